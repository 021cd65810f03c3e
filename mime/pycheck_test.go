package mime_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

// python returns the python3 to use: $MXRELAY_PYTHON, /usr/bin/python3 (the
// Debian package CI installs) or python3 on $PATH; the test is skipped when
// there is none.
func python(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MXRELAY_PYTHON"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: install Debian's python3 (.ci/run does) to run the independent parser check")
	}
	return p
}

// TestPythonEmail reads every golden message and a few hundred generated ones
// with Python's email package (policy=default): no defect, exactly the
// headers that were set, and the same decoded subject, addresses, display
// names, header values, bodies, file names and attachment bytes.
func TestPythonEmail(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	write := func(name string, m *mime.Message, raw []byte) {
		t.Helper()
		checkWire(t, raw)
		v := expected(t, m)
		v.SMTPUTF8 = m.NeedsSMTPUTF8()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".eml"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, m := range goldenCases(t) {
		raw, err := m.AppendTo(nil, fixedOptions())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		write("golden-"+name, m, raw)
	}
	rng := rand.New(rand.NewPCG(2, 6))
	const generated = 300
	for i := range generated {
		m := randomMessage(rng)
		raw, err := m.Bytes()
		if err != nil {
			t.Fatalf("generated %d: %v\n%+v", i, err, m)
		}
		write("gen-"+strings.Repeat("0", 3-len(itoa(i)))+itoa(i), m, raw)
	}
	out, err := exec.Command(py, filepath.Join("testdata", "pycheck.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("pycheck.py: %v\n%s", err, out)
	}
	if len(out) > 0 {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, l := range lines[:min(len(lines), 30)] {
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			t.Error(l)
		}
		t.Fatalf("%d problems; messages in %s", len(lines), dir)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
