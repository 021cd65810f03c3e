package preflight

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocListsEveryCheck keeps the table of doc.go and the code in step:
// every check name the code uses is listed, and every listed one is used.
func TestDocListsEveryCheck(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`"((?:config|spf|dkim|dmarc|rdns|mx|bulk)\.[a-z0-9-]+)"`)
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "doc.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^//\t((?:config|spf|dkim|dmarc|rdns|mx|bulk)\.[a-z0-9-]+) +(ok|info|warning|error)`)
	listed := map[string]bool{}
	var order []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = true
		order = append(order, m[1])
	}
	if len(listed) < 50 || len(used) < 50 {
		t.Fatalf("%d checks listed, %d used: the patterns no longer match", len(listed), len(used))
	}
	for n := range used {
		if !listed[n] {
			t.Errorf("%s is not in the table of doc.go", n)
		}
	}
	for n := range listed {
		if !used[n] {
			t.Errorf("%s is in doc.go but not in the code", n)
		}
	}
	// The table goes family by family, in report order.
	var fams []string
	for _, n := range order {
		if f := family(n); len(fams) == 0 || fams[len(fams)-1] != f {
			fams = append(fams, f)
		}
	}
	var want []string
	for _, f := range families {
		want = append(want, f.name)
	}
	if !slices.Equal(fams, want) {
		t.Errorf("doc.go families %q, want %q", fams, want)
	}
}
