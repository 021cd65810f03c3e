// Command testsummary reads the output of "go test -json" on its standard
// input and prints what plain "go test" would print: one ok, FAIL or ?
// line per package, the full output of the tests that failed, and the
// errors of packages that did not build. After the last package it adds one
// line per group of skipped tests, grouped by package and by the reason
// the tests gave, so that a run that skipped tests says so:
//
//	skipped: 12 tests in queue/pgstore: MXRELAY_TEST_POSTGRES is not set
//
// It exits with status 1 if a test failed, a package failed or did not
// build, or no package result was read at all. Lines that are not JSON
// (messages of the go command itself) are copied through as they come.
//
// The repository's ./test script runs it:
//
//	go test -race -count=1 -json ./... | testsummary
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

func main() {
	if !summarize(os.Stdin, os.Stdout, modulePath()) {
		os.Exit(1)
	}
}

// event is one line of "go test -json" (see "go doc test2json").
type event struct {
	Action      string // start, run, output, pass, fail, skip, build-output, build-fail, ...
	Package     string // the package of a test event
	Test        string // the test, "" for an event of the whole package
	Output      string // the text of an output or build-output event
	ImportPath  string // the package of a build event
	FailedBuild string // on a package's fail event: the package that did not build
}

// pkgRun gathers the events of one package until its result.
type pkgRun struct {
	lines   []line            // output in the order it came
	outcome map[string]string // test → pass, fail or skip
}

// line is one line of output and the test that printed it ("" for the
// package).
type line struct {
	test, text string
}

// skipGroup counts the tests of one package skipped for one reason.
type skipGroup struct {
	pkg, reason string
	n           int
}

// summarizer holds the state of one run.
type summarizer struct {
	out      io.Writer
	module   string
	pkgs     map[string]*pkgRun
	started  []string            // packages in the order they started
	builds   map[string][]string // import path → build output not yet printed
	skips    map[[2]string]int   // (package, reason) → tests skipped
	results  int                 // packages with a result
	failed   bool
	finished map[string]bool // packages with a result
}

// summarize reads "go test -json" output from in, writes the summary to
// out, and reports whether every package passed. module is the module
// path, cut from package paths in the skip lines.
func summarize(in io.Reader, out io.Writer, module string) bool {
	s := &summarizer{
		out:      out,
		module:   module,
		pkgs:     map[string]*pkgRun{},
		builds:   map[string][]string{},
		skips:    map[[2]string]int{},
		finished: map[string]bool{},
	}
	r := bufio.NewReader(in)
	for {
		text, err := r.ReadString('\n')
		if text != "" {
			s.line(text)
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(out, "testsummary: reading the test output: %v\n", err)
				s.failed = true
			}
			break
		}
	}
	s.end()
	return !s.failed
}

// line handles one line of input.
func (s *summarizer) line(text string) {
	var e event
	if !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &e) != nil || e.Action == "" {
		io.WriteString(s.out, withNewline(text))
		return
	}
	switch e.Action {
	case "build-output":
		s.builds[e.ImportPath] = append(s.builds[e.ImportPath], e.Output)
		return
	case "build-fail":
		s.failed = true
		s.printBuild(e.ImportPath)
		return
	}
	if e.Package == "" {
		return
	}
	p := s.pkgs[e.Package]
	if p == nil {
		p = &pkgRun{outcome: map[string]string{}}
		s.pkgs[e.Package] = p
		s.started = append(s.started, e.Package)
	}
	switch e.Action {
	case "output":
		p.lines = append(p.lines, line{e.Test, e.Output})
	case "pass", "fail", "skip":
		if e.Test != "" {
			p.outcome[e.Test] = e.Action
			if e.Action == "fail" {
				s.failed = true
			}
			return
		}
		if e.FailedBuild != "" {
			s.printBuild(e.FailedBuild) // if its build-fail event did not come first
		}
		s.finish(e.Package, p, e.Action)
	}
}

// printBuild prints the build output gathered for an import path, once.
func (s *summarizer) printBuild(importPath string) {
	for _, text := range s.builds[importPath] {
		io.WriteString(s.out, withNewline(text))
	}
	delete(s.builds, importPath)
}

// finish prints a package's result; action is its pass, fail or skip.
func (s *summarizer) finish(pkg string, p *pkgRun, action string) {
	s.results++
	s.finished[pkg] = true
	s.countSkips(pkg, p)
	if action == "fail" {
		s.failed = true
		s.printFailed(p)
		return
	}
	// Passed or no test files: go test prints the package's last line,
	// "ok  \tpath\t0.1s" or "?   \tpath\t[no test files]".
	for i := len(p.lines) - 1; i >= 0; i-- {
		if l := p.lines[i]; l.test == "" && (strings.HasPrefix(l.text, "ok  ") || strings.HasPrefix(l.text, "?   ")) {
			io.WriteString(s.out, withNewline(l.text))
			return
		}
	}
	if action == "skip" {
		fmt.Fprintf(s.out, "?   \t%s\t[no test files]\n", pkg)
	} else {
		fmt.Fprintf(s.out, "ok  \t%s\n", pkg)
	}
}

// printFailed prints a failed package's output as plain go test does: the
// package's own lines, and for each failed test its result line, its
// output and its failed subtests, indented one step per level. Tests that
// passed or were skipped are left out. A test without a result (the test
// binary died while it ran) counts as failed.
func (s *summarizer) printFailed(p *pkgRun) {
	byTest := map[string][]string{}
	var order []string // tests in the order of their first line
	for _, l := range p.lines {
		if l.test == "" || framing(l.text) {
			continue
		}
		if _, seen := byTest[l.test]; !seen {
			order = append(order, l.test)
		}
		byTest[l.test] = append(byTest[l.test], l.text)
	}
	// parent returns the nearest enclosing test that printed something.
	parent := func(test string) string {
		for i := len(test) - 1; i > 0; i-- {
			if test[i] == '/' {
				if _, ok := byTest[test[:i]]; ok {
					return test[:i]
				}
			}
		}
		return ""
	}
	children := map[string][]string{}
	for _, test := range order {
		if pt := parent(test); pt != "" {
			children[pt] = append(children[pt], test)
		}
	}
	failed := func(test string) bool {
		o := p.outcome[test]
		return o == "fail" || o == ""
	}
	var block func(test string, depth int)
	block = func(test string, depth int) {
		indent := strings.Repeat("    ", depth)
		var rest []string
		for _, text := range byTest[test] {
			if strings.HasPrefix(text, "--- ") {
				io.WriteString(s.out, indent+withNewline(text)) // the result line first
			} else {
				rest = append(rest, text)
			}
		}
		for _, text := range rest {
			if strings.HasPrefix(text, "    ") {
				text = indent + text // a log line; raw output stays as it was
			}
			io.WriteString(s.out, withNewline(text))
		}
		for _, c := range children[test] {
			if failed(c) {
				block(c, depth+1)
			}
		}
	}
	printed := map[string]bool{}
	for _, l := range p.lines {
		switch {
		case l.test == "":
			if !framing(l.text) {
				io.WriteString(s.out, withNewline(l.text))
			}
		case !printed[l.test] && parent(l.test) == "" && failed(l.test):
			printed[l.test] = true
			block(l.test, 0)
		}
	}
}

// logLine matches a line that t.Log, t.Skip and their kin print:
// indentation, file:line, then the message.
var logLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: (.*)$`)

// countSkips adds the package's skipped tests to their groups. A test's
// reason is the last message it logged, which is the one given to Skip,
// with any continuation lines joined to it.
func (s *summarizer) countSkips(pkg string, p *pkgRun) {
	for test, outcome := range p.outcome {
		if outcome != "skip" {
			continue
		}
		var msg []string
		for _, l := range p.lines {
			if l.test != test || framing(l.text) {
				continue
			}
			text := strings.TrimRight(l.text, "\r\n")
			if m := logLine.FindStringSubmatch(text); m != nil {
				msg = []string{m[1]}
			} else if len(msg) > 0 && strings.TrimLeft(text, " \t") != text &&
				!strings.HasPrefix(strings.TrimSpace(text), "--- ") {
				// A continuation line of the message: indented, and not
				// a test's result line.
				msg = append(msg, strings.TrimSpace(text))
			}
		}
		reason := strings.Join(msg, " ")
		if reason == "" {
			reason = "no reason given"
		}
		s.skips[[2]string{pkg, reason}]++
	}
}

// framing reports the lines that -json mode adds around each test's
// output and plain go test does not print for a failed test.
func framing(text string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(text, p) {
			return true
		}
	}
	return false
}

// end prints what is left once the input ends: packages that never gave a
// result, build output that no failure claimed, and the skipped tests.
func (s *summarizer) end() {
	for _, pkg := range s.started {
		if s.finished[pkg] {
			continue
		}
		p := s.pkgs[pkg]
		s.failed = true
		for _, l := range p.lines {
			if !framing(l.text) {
				io.WriteString(s.out, withNewline(l.text))
			}
		}
		fmt.Fprintf(s.out, "FAIL\t%s\t[no result: the test output ended before the package did]\n", pkg)
	}
	paths := make([]string, 0, len(s.builds))
	for path := range s.builds {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		s.printBuild(path)
	}
	if s.results == 0 {
		fmt.Fprintln(s.out, "testsummary: no package results in the test output")
		s.failed = true
	}
	if s.failed {
		fmt.Fprintln(s.out, "FAIL")
	}
	var groups []skipGroup
	for k, n := range s.skips {
		groups = append(groups, skipGroup{k[0], k[1], n})
	}
	slices.SortFunc(groups, func(a, b skipGroup) int {
		return cmp.Or(strings.Compare(a.pkg, b.pkg), strings.Compare(a.reason, b.reason))
	})
	for _, g := range groups {
		tests := "tests"
		if g.n == 1 {
			tests = "test"
		}
		fmt.Fprintf(s.out, "skipped: %d %s in %s: %s\n", g.n, tests, s.short(g.pkg), g.reason)
	}
}

// short returns a package path without the module path in front.
func (s *summarizer) short(pkg string) string {
	if rest, ok := strings.CutPrefix(pkg, s.module+"/"); ok && s.module != "" {
		return rest
	}
	return pkg
}

func withNewline(text string) string {
	if strings.HasSuffix(text, "\n") {
		return text
	}
	return text + "\n"
}

// modulePath returns the module path in the go.mod of the current
// directory or the nearest one above it, or "" if there is none.
func modulePath() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
					return strings.Trim(strings.TrimSpace(rest), `"`)
				}
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
