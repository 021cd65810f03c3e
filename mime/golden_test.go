package mime_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
)

var update = flag.Bool("update", false, "rewrite the golden .eml files in testdata/golden")

// counterReader yields 0, 1, 2, ...: fixed "random" bytes for byte-stable
// output.
type counterReader struct{ n byte }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// fixedOptions makes the output deterministic.
func fixedOptions() *mime.WriteOptions {
	return &mime.WriteOptions{
		Rand: &counterReader{},
		Now:  func() time.Time { return time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC) },
	}
}

// goldenCases loads every testdata/golden/*.json as a Message.
func goldenCases(t *testing.T) map[string]*mime.Message {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	cases := make(map[string]*mime.Message)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m mime.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases[strings.TrimSuffix(filepath.Base(f), ".json")] = &m
	}
	return cases
}

// TestGolden writes each testdata/golden/NAME.json message and compares it
// with NAME.eml byte for byte (go test -update rewrites them), then reads it
// back with go-message.
func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	emls, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.eml"))
	for _, f := range emls {
		if cases[strings.TrimSuffix(filepath.Base(f), ".eml")] == nil {
			t.Errorf("%s has no .json input", f)
		}
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := m.AppendTo(nil, fixedOptions())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name+".eml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
			}
			roundTrip(t, m, got)
		})
	}
}
