package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/scanner"
	"go/token"
	"go/types"
	"path"
	"strconv"
	"strings"
)

// MaxSourceSize is the largest parser source Check accepts.
const MaxSourceSize = 1 << 20

// Signature is the function a parser must define.
const Signature = "func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error)"

// Problem is one thing wrong with a parser's source, at a position.
type Problem struct {
	Pos     token.Position // Filename is the name given to Check; Line and Column from 1
	Message string
}

func (p Problem) String() string {
	if p.Pos.IsValid() {
		return p.Pos.String() + ": " + p.Message
	}
	return p.Pos.Filename + ": " + p.Message
}

// CheckError is the error of Check: every problem found, in source order.
type CheckError struct {
	Problems []Problem
}

func (e *CheckError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Check is what the server does with a parser's source instead of compiling
// it: it parses the file (go/parser, go/types without imports; nothing is
// compiled or run) and reports, all at once, as a *CheckError:
//   - syntax errors, a missing package clause;
//   - every import outside AllowedImports, with its position;
//   - a use of a standard library symbol the interpreter does not have (its
//     tables are Go 1.22's: strings.Lines is refused);
//   - range over an integer or a function, which the interpreter does not
//     support;
//   - go statements and time.AfterFunc: a goroutine could outlive the call
//     and keep a worker busy, and a parser has no need for one;
//   - a missing ParseMessages, or one whose signature is not Signature (any
//     parameter names; soar may be imported under another name).
//
// A script that passes Check can still fail to compile in the worker (type
// errors are the interpreter's to report, with their lines).
func Check(name, source string) error {
	_, err := check(name, source)
	return err
}

// check returns the parsed file of a valid parser.
func check(name, source string) (*ast.File, error) {
	if name == "" {
		name = "parser.go"
	}
	if len(source) > MaxSourceSize {
		return nil, &CheckError{[]Problem{{Pos: token.Position{Filename: name}, Message: fmt.Sprintf("source is %d bytes, over the limit of %d", len(source), MaxSourceSize)}}}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, source, parser.AllErrors|parser.SkipObjectResolution)
	if err != nil {
		var list scanner.ErrorList
		if !errors.As(err, &list) {
			return nil, err
		}
		list.RemoveMultiples() // one error per line
		ce := &CheckError{}
		for _, e := range list {
			msg := e.Msg
			if strings.HasPrefix(msg, "expected 'package'") {
				msg += " (a parser starts with a package clause, e.g. package parser)"
			}
			ce.Problems = append(ce.Problems, Problem{Pos: e.Pos, Message: msg})
		}
		return nil, ce
	}
	c := &checker{fset: fset, file: f, soarNames: map[string]bool{}}
	c.imports()
	c.walk()
	c.parseMessages()
	if len(c.problems) > 0 {
		return nil, &CheckError{c.problems}
	}
	return f, nil
}

type checker struct {
	fset      *token.FileSet
	file      *ast.File
	problems  []Problem
	soarNames map[string]bool // local names of the soar import
	dotSoar   bool            // soar imported with "."
}

func (c *checker) addf(pos token.Pos, format string, args ...any) {
	c.problems = append(c.problems, Problem{Pos: c.fset.Position(pos), Message: fmt.Sprintf(format, args...)})
}

func (c *checker) imports() {
	for _, spec := range c.file.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			c.addf(spec.Path.Pos(), "malformed import path %s", spec.Path.Value)
			continue
		}
		switch {
		case importSymbols(p) != nil:
		case strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/"):
			c.addf(spec.Path.Pos(), "import %q refused: relative and absolute import paths are not allowed in a parser", p)
			continue
		case strings.Contains(strings.SplitN(p, "/", 2)[0], "."):
			c.addf(spec.Path.Pos(), "import %q refused: a parser may import only %s and the allowed standard library packages", p, SoarImportPath)
			continue
		default:
			c.addf(spec.Path.Pos(), "import %q refused: not in the parser allow-list (%s)", p, strings.Join(AllowedImports(), ", "))
			continue
		}
		if p != SoarImportPath {
			continue
		}
		switch {
		case spec.Name == nil:
			c.soarNames["soar"] = true
		case spec.Name.Name == ".":
			c.dotSoar = true
		case spec.Name.Name != "_":
			c.soarNames[spec.Name.Name] = true
		}
	}
}

// walk type-checks the file without its imports (every import is an empty
// package, so selectors on them are unknown and their errors ignored) to
// find range statements over integers and functions, and checks selectors on
// imported packages against the interpreter's symbol tables.
func (c *checker) walk() {
	info := &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Uses:  map[*ast.Ident]types.Object{},
	}
	conf := types.Config{
		Importer: emptyImporter{},
		Error:    func(error) {},
	}
	_, _ = conf.Check(c.file.Name.Name, c.fset, []*ast.File{c.file}, info)

	ast.Inspect(c.file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			c.addf(n.Pos(), "go statement refused: goroutines are not allowed in a parser (one could outlive the call)")
		case *ast.RangeStmt:
			if lit, ok := n.X.(*ast.BasicLit); ok && lit.Kind == token.INT {
				c.addf(n.Pos(), "range over an integer is not supported by the parser interpreter; write for i := 0; i < n; i++")
				break
			}
			tv, ok := info.Types[n.X]
			if !ok || tv.Type == nil {
				break
			}
			switch u := tv.Type.Underlying().(type) {
			case *types.Basic:
				if u.Info()&types.IsInteger != 0 {
					c.addf(n.Pos(), "range over an integer is not supported by the parser interpreter; write for i := 0; i < n; i++")
				}
			case *types.Signature:
				c.addf(n.Pos(), "range over a function is not supported by the parser interpreter")
			}
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				break
			}
			pn, ok := info.Uses[id].(*types.PkgName)
			if !ok {
				break
			}
			p := pn.Imported().Path()
			if why, refused := refusedSymbols[p][n.Sel.Name]; refused {
				c.addf(n.Sel.Pos(), "%s", why)
				break
			}
			syms := importSymbols(p)
			if syms == nil {
				break // refused import, already reported
			}
			if _, ok := syms[n.Sel.Name]; ok {
				break
			}
			if p == SoarImportPath {
				c.addf(n.Sel.Pos(), "%s.%s is not defined in package soar", id.Name, n.Sel.Name)
			} else {
				c.addf(n.Sel.Pos(), "%s.%s is not supported by the parser interpreter (its %s package is Go 1.22's)", id.Name, n.Sel.Name, p)
			}
		}
		return true
	})
}

// emptyImporter gives every import an empty, complete package: Check never
// loads real packages, and needs only to know which identifiers are
// package names.
type emptyImporter struct{}

func (emptyImporter) Import(p string) (*types.Package, error) {
	name := path.Base(p)
	if n, ok := allowedStdlib[p]; ok {
		name = n
	}
	pkg := types.NewPackage(p, name)
	pkg.MarkComplete()
	return pkg, nil
}

func (c *checker) parseMessages() {
	var fn *ast.FuncDecl
	for _, d := range c.file.Decls {
		if f, ok := d.(*ast.FuncDecl); ok && f.Recv == nil && f.Name.Name == "ParseMessages" {
			fn = f
			break
		}
	}
	want := "a parser defines\n\t" + Signature + "\nwith import \"" + SoarImportPath + "\""
	if fn == nil {
		c.addf(c.file.Name.Pos(), "ParseMessages is not defined: %s", want)
		return
	}
	if !c.signatureOK(fn.Type) {
		var b bytes.Buffer
		_ = printer.Fprint(&b, c.fset, fn.Type)
		got := strings.Replace(b.String(), "func", "func ParseMessages", 1)
		c.addf(fn.Pos(), "ParseMessages has the wrong signature\n\t%s\n%s", got, want)
	}
}

func (c *checker) signatureOK(t *ast.FuncType) bool {
	if t.TypeParams != nil && len(t.TypeParams.List) > 0 {
		return false
	}
	params := flatten(t.Params)
	results := flatten(t.Results)
	return len(params) == 2 && len(results) == 2 &&
		isIdent(params[0], "string") && c.isSoarSlice(params[1], "Message") &&
		c.isSoarSlice(results[0], "Result") && isIdent(results[1], "error")
}

// flatten lists a field list's types, once per name.
func flatten(fl *ast.FieldList) []ast.Expr {
	if fl == nil {
		return nil
	}
	var out []ast.Expr
	for _, f := range fl.List {
		n := len(f.Names)
		if n == 0 {
			n = 1
		}
		for range n {
			out = append(out, f.Type)
		}
	}
	return out
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func (c *checker) isSoarSlice(e ast.Expr, typeName string) bool {
	at, ok := e.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return false
	}
	switch elt := at.Elt.(type) {
	case *ast.SelectorExpr:
		x, ok := elt.X.(*ast.Ident)
		return ok && c.soarNames[x.Name] && elt.Sel.Name == typeName
	case *ast.Ident:
		return c.dotSoar && elt.Name == typeName
	}
	return false
}
