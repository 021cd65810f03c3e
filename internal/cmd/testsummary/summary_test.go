package main

import (
	"os"
	"strings"
	"testing"
)

// testdata/run.json is the output of "go test -json ./..." on a module
// with a passing package, a failing test with subtests, skipped tests, a
// test that panics, a package without tests, a package whose test does not
// compile, and a package that imports one that does not compile. A line
// of the go command that is not JSON comes first, and a package whose test
// binary was killed mid-test comes last.
func TestSummarizeRun(t *testing.T) {
	in, err := os.Open("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out strings.Builder
	if summarize(in, &out, "example.com/tsx") {
		t.Error("summarize reported success for a run with failures")
	}
	if got := out.String(); got != wantRun {
		t.Errorf("summary:\n%s\nwant:\n%s", got, wantRun)
		gotLines, wantLines := strings.Split(got, "\n"), strings.Split(wantRun, "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Errorf("first difference at line %d:\n got  %q\n want %q", i+1, gotLines[i], wantLines[i])
				break
			}
		}
	}
}

const wantRun = `go: downloading example.com/dep v1.0.0
# example.com/tsx/dep
dep/dep.go:3:23: cannot use "x" (untyped string constant) as int value in return statement
# example.com/tsx/broken [example.com/tsx/broken.test]
broken/broken_test.go:5:28: undefined: undefinedThing
FAIL	example.com/tsx/broken [build failed]
FAIL	example.com/tsx/dep [build failed]
--- FAIL: TestFail (0.00s)
    --- FAIL: TestFail/sub-bad (0.00s)
        fail_test.go:8: bad thing
            second line
FAIL
FAIL	example.com/tsx/fail	0.003s
?   	example.com/tsx/notests	[no test files]
ok  	example.com/tsx/ok	0.005s
--- FAIL: TestPanic (0.00s)
panic: assignment to entry in nil map [recovered, repanicked]

goroutine 20 [running]:
testing.tRunner.func1.2({0x55a7a0, 0x6cac60})
	GOROOT/src/testing/testing.go:1974 +0x232
testing.tRunner.func1()
	GOROOT/src/testing/testing.go:1977 +0x349
panic({0x55a7a0?, 0x6cac60?})
	GOROOT/src/runtime/panic.go:860 +0x13a
example.com/tsx/panics.TestPanic(0x1a128721c6c8?)
	panics/p_test.go:6 +0x28
testing.tRunner(0x1a128721c6c8, 0x592e40)
	GOROOT/src/testing/testing.go:2036 +0xea
created by testing.(*T).Run in goroutine 1
	GOROOT/src/testing/testing.go:2101 +0x4c5
FAIL	example.com/tsx/panics	0.012s
FAIL	example.com/tsx/usesdep [build failed]
ok  	example.com/tsx/skip	0.008s
    slow_test.go:9: still waiting
FAIL	example.com/tsx/killed	[no result: the test output ended before the package did]
FAIL
skipped: 3 tests in skip: DB is not set
skipped: 1 test in skip: no peer
skipped: 1 test in skip: no reason given
`

// A run where every package passes succeeds, and still lists its skips.
func TestSummarizePass(t *testing.T) {
	in := `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestDB"}
{"Action":"output","Package":"m/a","Test":"TestDB","Output":"=== RUN   TestDB\n"}
{"Action":"output","Package":"m/a","Test":"TestDB","Output":"    db_test.go:12: DB is not set; set it to a DSN\n"}
{"Action":"output","Package":"m/a","Test":"TestDB","Output":"        (see the README)\n"}
{"Action":"output","Package":"m/a","Test":"TestDB","Output":"--- SKIP: TestDB (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestDB","Elapsed":0}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"    ok_test.go:5: not shown\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK","Elapsed":0}
{"Action":"output","Package":"m/a","Output":"PASS\n"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.010s\n"}
{"Action":"pass","Package":"m/a","Elapsed":0.01}
{"Action":"start","Package":"m"}
{"Action":"output","Package":"m","Output":"?   \tm\t[no test files]\n"}
{"Action":"skip","Package":"m","Elapsed":0}
`
	var out strings.Builder
	if !summarize(strings.NewReader(in), &out, "m") {
		t.Errorf("summarize reported a failure for a passing run:\n%s", out.String())
	}
	want := "ok  \tm/a\t0.010s\n?   \tm\t[no test files]\nskipped: 1 test in a: DB is not set; set it to a DSN (see the README)\n"
	if out.String() != want {
		t.Errorf("summary:\n%q\nwant:\n%q", out.String(), want)
	}
}

// No package result at all (go test failed before running any) is a
// failure.
func TestSummarizeNothing(t *testing.T) {
	var out strings.Builder
	if summarize(strings.NewReader("go: cannot find main module\n"), &out, "") {
		t.Error("summarize reported success for input without results")
	}
	want := "go: cannot find main module\ntestsummary: no package results in the test output\nFAIL\n"
	if out.String() != want {
		t.Errorf("summary:\n%q\nwant:\n%q", out.String(), want)
	}
}
