package queue_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docPackages are the directories whose documentation TestDocComments
// checks: package queue and the stores and suite that come with it.
var docPackages = []string{".", "boltstore", "pgstore", "queuetest"}

// vagueDoc matches doc comment text that points somewhere go doc does not
// show: at text "above" or "below" (go doc prints one declaration at a
// time) or at a source file.
var vagueDoc = regexp.MustCompile(`\b(above|below)\b|\b[A-Za-z0-9_]+\.go\b`)

// TestDocComments checks that every exported name that go doc shows in
// these packages (types, functions, methods of exported types, constants,
// variables, struct fields and interface methods) has a comment, and that
// no such comment says "as described above" or "see file.go" instead of
// stating the thing.
func TestDocComments(t *testing.T) {
	for _, dir := range docPackages {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		c := &docChecker{t: t, fset: fset}
		hasPkgDoc := false
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc != nil {
				hasPkgDoc = true
				c.text(f.Package, "package "+f.Name.Name, f.Doc)
			}
			c.file(f)
		}
		if !hasPkgDoc {
			t.Errorf("%s: no package documentation", filepath.Join("queue", dir))
		}
	}
}

type docChecker struct {
	t    *testing.T
	fset *token.FileSet
}

// missing reports an exported name without a comment.
func (c *docChecker) missing(pos token.Pos, what string) {
	c.t.Helper()
	p := c.fset.Position(pos)
	c.t.Errorf("%s:%d: %s has no doc comment", filepath.Join("queue", p.Filename), p.Line, what)
}

// text reports a comment that points at text go doc does not show.
func (c *docChecker) text(pos token.Pos, what string, groups ...*ast.CommentGroup) {
	c.t.Helper()
	for _, g := range groups {
		if g == nil {
			continue
		}
		if m := vagueDoc.FindString(g.Text()); m != "" {
			p := c.fset.Position(pos)
			c.t.Errorf("%s:%d: the comment of %s says %q: state the thing instead",
				filepath.Join("queue", p.Filename), p.Line, what, m)
		}
	}
}

// documented reports whether any of the comment groups is non-empty.
func documented(groups ...*ast.CommentGroup) bool {
	for _, g := range groups {
		if g != nil && strings.TrimSpace(g.Text()) != "" {
			return true
		}
	}
	return false
}

func (c *docChecker) file(f *ast.File) {
	exportedTypes := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
			for _, s := range g.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					exportedTypes[ts.Name.Name] = true
				}
			}
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			name := d.Name.Name
			if d.Recv != nil {
				recv := receiverType(d.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue // not shown by go doc
				}
				name = recv + "." + name
			}
			if !documented(d.Doc) {
				c.missing(d.Pos(), "func "+name)
			}
			c.text(d.Pos(), "func "+name, d.Doc)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if !documented(s.Doc, d.Doc) {
						c.missing(s.Pos(), "type "+s.Name.Name)
					}
					c.text(s.Pos(), "type "+s.Name.Name, s.Doc, d.Doc)
					c.members(s.Name.Name, s.Type)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if !n.IsExported() {
							continue
						}
						what := d.Tok.String() + " " + n.Name
						// A constant or variable of a group may share the
						// group's doc comment.
						if !documented(s.Doc, s.Comment, d.Doc) {
							c.missing(n.Pos(), what)
						}
						c.text(n.Pos(), what, s.Doc, s.Comment, d.Doc)
					}
				}
			}
		}
	}
}

// members checks the exported fields of a struct type and the methods of
// an interface type.
func (c *docChecker) members(typeName string, typ ast.Expr) {
	var fields *ast.FieldList
	switch typ := typ.(type) {
	case *ast.StructType:
		fields = typ.Fields
	case *ast.InterfaceType:
		fields = typ.Methods
	default:
		return
	}
	for _, f := range fields.List {
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			what := typeName + "." + n.Name
			if !documented(f.Doc, f.Comment) {
				c.missing(n.Pos(), what)
			}
			c.text(n.Pos(), what, f.Doc, f.Comment)
		}
	}
}

// receiverType returns the name of a method's receiver type.
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
