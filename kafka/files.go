package kafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/soarkafka/soarkafka"
)

// SettingAllowedDirs is the server setting a FilePolicy holds.
const SettingAllowedDirs = "files.allowed_dirs"

// FilePolicy decides which files the path fields of an asset (ca_cert,
// cert_file, key_file, kerberos.krb5_conf as a path, kerberos.keytab_path,
// kerberos.ccache_path) may name: files inside one of its directories,
// after symbolic links are resolved. A nil *FilePolicy accepts no path;
// the inline fields (ca_pem, cert_pem, key_pem, kerberos.keytab, krb5.conf
// text) need none.
//
// Whatever the reason a path cannot be used (missing, unreadable, a
// directory, outside the allowed directories), the error says the same,
// so that an asset cannot learn which files exist on the server's disk.
type FilePolicy struct {
	dirs []string // absolute, symbolic links resolved, cleaned
}

// NewFilePolicy returns the policy of files.allowed_dirs: each entry an
// absolute path of an existing directory. It returns nil (no path
// accepted) when dirs is empty.
func NewFilePolicy(dirs []string) (*FilePolicy, error) {
	p := &FilePolicy{}
	var problems []string
	for _, d := range dirs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			problems = append(problems, fmt.Sprintf("%s: %q is not an absolute path", SettingAllowedDirs, d))
			continue
		}
		real, err := filepath.EvalSymlinks(filepath.Clean(d))
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(real); err == nil && !fi.IsDir() {
				err = errors.New("not a directory")
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", SettingAllowedDirs, d, pathReason(err)))
			continue
		}
		p.dirs = append(p.dirs, real)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if len(p.dirs) == 0 {
		return nil, nil
	}
	return p, nil
}

// FileError is a path field naming a file that cannot be used. Its message
// is the same for every reason, and the reason is not kept: the answer goes
// to whoever gave the path.
type FileError struct {
	Field, Path string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s: file %s cannot be used: it is missing, unreadable, or outside %s", e.Field, e.Path, SettingAllowedDirs)
}

// AppError is the EINVALID application error of e, with the same message.
func (e *FileError) AppError() *soarkafka.Error {
	return soarkafka.Errorf(soarkafka.EINVALID, "%s", e.Error())
}

// ReadFile reads the file the asset field names, if the policy allows it.
// The path is cleaned and its symbolic links resolved before it is checked
// against the allowed directories, and the file is then opened under that
// directory (os.Root), so a link swapped in meanwhile cannot lead out. An
// error is a *soarkafka.Error (EINVALID) worded by FileError.
func (p *FilePolicy) ReadFile(field, path string) ([]byte, error) {
	b, err := p.readFile(path)
	if err != nil {
		return nil, (&FileError{Field: field, Path: path}).AppError()
	}
	return b, nil
}

func (p *FilePolicy) readFile(path string) ([]byte, error) {
	if p == nil {
		return nil, errors.New("no directory is allowed")
	}
	abs, err := filepath.Abs(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	for _, dir := range p.dirs {
		rel, err := filepath.Rel(dir, real)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		return root.ReadFile(rel)
	}
	return nil, errors.New("outside the allowed directories")
}
