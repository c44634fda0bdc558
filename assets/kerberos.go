package assets

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"

	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// ParseKrb5Conf parses krb5.conf text with gokrb5's parser, which panics
// on some malformed input (a realm line "R = { kdc = x }" slices out of
// range): here a panic is an error like any other, so no krb5.conf text can
// take down the goroutine that parses it. Saving an asset and building its
// Kerberos login both parse through it.
func ParseKrb5Conf(text string) (c *krb5config.Config, err error) {
	defer func() {
		if v := recover(); v != nil {
			c, err = nil, fmt.Errorf("the krb5.conf parser failed on it (%v); check that each realm's { and } are on lines of their own", v)
		}
	}()
	return krb5config.NewFromString(text)
}

// ParseKeytab reads a keytab file's content; like ParseKrb5Conf, a panic of
// the parser on crafted bytes is an error. A keytab with no key is refused:
// it cannot log anyone in.
func ParseKeytab(b []byte) (kt *keytab.Keytab, err error) {
	defer func() {
		if v := recover(); v != nil {
			kt, err = nil, fmt.Errorf("the keytab parser failed on it (%v)", v)
		}
	}()
	kt = keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, err
	}
	if len(kt.Entries) == 0 {
		return nil, fmt.Errorf("it holds no key")
	}
	return kt, nil
}

// KDCs returns the host:port addresses of kerberos.kdc, port 88 where none
// is given.
func (k Kerberos) KDCs() []string {
	var out []string
	for _, kdc := range strings.Split(k.KDC, ",") {
		if kdc = strings.TrimSpace(kdc); kdc == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(kdc); err != nil {
			kdc = net.JoinHostPort(strings.Trim(kdc, "[]"), "88")
		}
		out = append(out, kdc)
	}
	return out
}

// realmProblem says what is wrong with a realm name, or "". Realms are
// written as printable text without spaces and without the characters
// krb5.conf and principal names give a meaning to; anything else is a
// typing or pasting mistake at best, and an attempt to write more
// configuration than a realm at worst.
func realmProblem(r string) string {
	switch {
	case r == "":
		return "empty"
	case len(r) > 255:
		return fmt.Sprintf("%d characters long; a realm has at most 255", len(r))
	}
	for _, c := range r {
		switch {
		case c > unicode.MaxASCII || !unicode.IsPrint(c):
			return fmt.Sprintf("%q has a character that is not printable ASCII (%U); write the realm as EXAMPLE.COM", r, c)
		case unicode.IsSpace(c):
			return fmt.Sprintf("%q has a space; write the realm as EXAMPLE.COM", r)
		case strings.ContainsRune(`{}[]=#;,@"'\`, c):
			return fmt.Sprintf("%q has %q, which a realm name cannot hold; write the realm as EXAMPLE.COM", r, c)
		}
	}
	return ""
}

// kdcProblems lists what is wrong with each KDC of a kerberos.kdc list.
func kdcProblems(list string) []string {
	var msgs []string
	n := 0
	for _, kdc := range strings.Split(list, ",") {
		if kdc = strings.TrimSpace(kdc); kdc == "" {
			continue
		}
		n++
		host, port, err := net.SplitHostPort(kdc)
		if err != nil {
			host, port = strings.Trim(kdc, "[]"), "88"
		}
		if msg := hostProblem(host); msg != "" {
			msgs = append(msgs, fmt.Sprintf("%q: %s; write host[:port], e.g. kdc1.example.com:88", kdc, msg))
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			msgs = append(msgs, fmt.Sprintf("%q: port must be a number from 1 to 65535", kdc))
		}
	}
	if n == 0 && len(msgs) == 0 {
		msgs = append(msgs, "no KDC given; write host[:port] separated by commas")
	}
	return msgs
}

// hostProblem says what is wrong with a host name or IP address, or "".
func hostProblem(host string) string {
	if host == "" {
		return "no host"
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	if len(host) > 253 {
		return "host name longer than 253 characters"
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 {
			return "not a host name"
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("%q is not allowed in a host name", c)
			}
		}
	}
	return ""
}

// principalProblem says what is wrong with a client principal, or "".
func principalProblem(p string) string {
	name, realm, hasRealm := strings.Cut(p, "@")
	for _, c := range p {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return fmt.Sprintf("%q has a space or a character that is not printable ASCII; write it as name or name@REALM", p)
		}
	}
	switch {
	case name == "":
		return fmt.Sprintf("%q has no name before the @; write it as name or name@REALM", p)
	case strings.Contains(name, "//") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return fmt.Sprintf("%q has an empty name component; write it as name, name/instance or name@REALM", p)
	case hasRealm:
		if msg := realmProblem(realm); msg != "" {
			return "its realm " + msg
		}
	}
	return ""
}

// validateValues checks the kerberos values one by one (validateLogin checks
// how they go together): realm, KDCs and principal are printable names that
// cannot carry configuration; krb5.conf text parses; a keytab is a keytab.
// A krb5_conf or keytab_path that is a path is read where it is used (the
// file may be mounted later), and checked there.
func (k *Kerberos) validateValues(errs *fieldErrors) {
	if k.Realm != "" {
		if msg := realmProblem(k.Realm); msg != "" {
			errs.add("kerberos.realm", msg)
		}
	}
	if k.KDC != "" {
		for _, msg := range kdcProblems(k.KDC) {
			errs.add("kerberos.kdc", msg)
		}
	}
	if k.Principal != "" {
		if msg := principalProblem(k.Principal); msg != "" {
			errs.add("kerberos.principal", msg)
		}
	}
	if k.Krb5Conf != "" && !k.Krb5ConfInline() && !strings.HasPrefix(k.Krb5Conf, "/") {
		errs.add("kerberos.krb5_conf", fmt.Sprintf("%q is neither krb5.conf text (that has [section] lines, e.g. [realms]) nor an absolute path on the server; give the file's text, or its path", k.Krb5Conf))
	}
	if k.Krb5Conf != "" && k.Krb5ConfInline() {
		c, err := ParseKrb5Conf(k.Krb5Conf)
		switch {
		case err != nil:
			errs.add("kerberos.krb5_conf", fmt.Sprintf("does not parse: %v; give the krb5.conf file's text, or its path on the server", err))
		case k.Principal != "" && !strings.Contains(k.Principal, "@") && k.Realm == "" && c.LibDefaults.DefaultRealm == "":
			errs.add("kerberos.principal", fmt.Sprintf("%q has no realm and the krb5.conf text sets no default_realm: write it as %s@REALM, or set kerberos.realm", k.Principal, k.Principal))
		}
	}
	if k.Keytab != "" {
		b, err := base64.StdEncoding.DecodeString(k.Keytab)
		if err != nil {
			errs.add("kerberos.keytab", "is not base64; give the keytab file's content base64-encoded (base64 -w0 client.keytab)")
		} else if _, err := ParseKeytab(b); err != nil {
			errs.add("kerberos.keytab", fmt.Sprintf("is not a keytab: %v; give the keytab file's content base64-encoded (base64 -w0 client.keytab)", err))
		}
	}
}
