package dkim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The Debian package python3-dkim installs dkimpy for the system Python,
// which is not necessarily the first python3 on PATH.
const systemPython = "/usr/bin/python3"

// dkimpyScript verifies every signature of every message listed in the job
// file with dkimpy, serving keys from the job's records, and prints one
// JSON result per signature.
const dkimpyScript = `
import json, sys
import dkim

job = json.load(open(sys.argv[1]))
records = job["records"]

def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.rstrip("."), "").encode() or None

out = []
for m in job["messages"]:
    data = open(m["path"], "rb").read()
    for idx in range(m["signatures"]):
        r = {"name": m["name"], "idx": idx, "ok": False, "error": ""}
        try:
            r["ok"] = bool(dkim.DKIM(data).verify(idx=idx, dnsfunc=dnsfunc))
        except Exception as e:
            r["error"] = "%s: %s" % (type(e).__name__, e)
        out.append(r)
json.dump(out, sys.stdout)
`

type dkimpyMessage struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	Signatures int    `json:"signatures"`
	wantOK     bool
}

type dkimpyResult struct {
	Name  string `json:"name"`
	Idx   int    `json:"idx"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// requireDkimpy skips the test when dkimpy cannot be imported.
func requireDkimpy(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(systemPython, "-c", "import dkim, nacl").CombinedOutput(); err != nil {
		t.Skipf("dkimpy not available (install the Debian packages python3-dkim and python3-nacl): %s -c 'import dkim, nacl': %v: %s",
			systemPython, err, bytes.TrimSpace(out))
	}
}

// runDkimpy verifies msgs with dkimpy in one process.
func runDkimpy(t *testing.T, recs keyRecords, msgs []dkimpyMessage) map[string][]dkimpyResult {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "verify.py")
	if err := os.WriteFile(script, []byte(dkimpyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	job, err := json.Marshal(map[string]any{"records": recs, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	jobFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobFile, job, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(systemPython, script, jobFile)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.Bytes())
	}
	var results []dkimpyResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("dkimpy output: %v\n%s", err, out)
	}
	byName := map[string][]dkimpyResult{}
	for _, r := range results {
		byName[r.Name] = append(byName[r.Name], r)
	}
	return byName
}

// TestDkimpy verifies our signatures with an independent implementation.
func TestDkimpy(t *testing.T) {
	t.Parallel()
	requireDkimpy(t)
	cfgs, recs := testConfigs(t)
	dir := t.TempDir()
	var job []dkimpyMessage
	add := func(name string, signed []byte, sigs int, wantOK bool) {
		path := filepath.Join(dir, fmt.Sprintf("%03d.eml", len(job)))
		if err := os.WriteFile(path, signed, 0o600); err != nil {
			t.Fatal(err)
		}
		job = append(job, dkimpyMessage{Name: name, Path: path, Signatures: sigs, wantOK: wantOK})
	}
	msgs := messages(t)
	for cname, cfg := range cfgs {
		s := mustSigner(t, cfg...)
		for mname, msg := range msgs {
			add(cname+"/"+mname, sign(t, s, msg), len(cfg), true)
		}
	}
	// The generated cases under every configuration too, bar the 1 MB
	// message, which one suffices for.
	for cname, cfg := range cfgs {
		s := mustSigner(t, cfg...)
		for _, extra := range extraMessages(t) {
			if extra.name == "generated-1MB" && cname != "dual" {
				continue
			}
			add(cname+"/"+extra.name, sign(t, s, extra.msg), len(cfg), true)
		}
	}
	// The checker must be able to say no.
	msg := msgs["folded-headers"]
	signed := sign(t, mustSigner(t, cfgs["dual"]...), msg)
	sigs := string(signed[:len(signed)-len(msg)])
	add("tampered/body", []byte(sigs+strings.Replace(string(msg), "Body.", "Body!", 1)), 2, false)
	add("tampered/second-from", []byte(sigs+"From: Mallory <ceo@example.com>\r\n"+string(msg)), 2, false)
	add("tampered/subject", []byte(sigs+strings.Replace(string(msg), "A subject", "B subject", 1)), 2, false)

	results := runDkimpy(t, recs, job)
	sort.Slice(job, func(i, j int) bool { return job[i].Name < job[j].Name })
	for _, m := range job {
		rs := results[m.Name]
		if len(rs) != m.Signatures {
			t.Errorf("%s: dkimpy gave %d results, want %d", m.Name, len(rs), m.Signatures)
			continue
		}
		for _, r := range rs {
			if r.OK != m.wantOK {
				t.Errorf("%s: signature %d: dkimpy ok=%v, want %v (%s)", m.Name, r.Idx, r.OK, m.wantOK, r.Error)
			}
		}
	}
	t.Logf("dkimpy checked %d messages", len(job))
}

type namedMessage struct {
	name string
	msg  []byte
}

// extraMessages are generated cases beyond testdata/messages.
func extraMessages(t *testing.T) []namedMessage {
	t.Helper()
	var big bytes.Buffer
	big.WriteString("From: a@example.com\r\nTo: b@example.net\r\nSubject: big\r\n\r\n")
	for i := range 20000 {
		fmt.Fprintf(&big, "line %05d of a body long enough to need several reads\r\n", i)
	}
	return []namedMessage{
		{"generated-1MB", big.Bytes()},
		{"only-from", []byte("From: a@example.com\r\n\r\n")},
		{"body-only-blank-lines", []byte("From: a@example.com\r\n\r\n\r\n\r\n\r\n")},
		{"whitespace-in-header-values", []byte("From:a@example.com\r\nSubject:\t  spaced\t \r\nTo:   b@example.net   \r\n\r\nx\r\n")},
		{"whitespace-lines", []byte("From: a@example.com\r\n\r\n  lead\r\n \r\n\t\r\nmid  dle\t\ttabs \r\n\r\nend  \t\r\n  \r\n\t \r\n")},
		{"many-empty-lines-at-end", []byte("From: a@example.com\r\n\r\nx\r\n" + strings.Repeat("\r\n", 20))},
		{"900-octet-lines", []byte("From: a@example.com\r\n\r\n" + strings.Repeat(strings.Repeat("word ", 180)+"\r\n", 3))},
		{"odd-case-names", []byte("fROM: a@example.com\r\nsUbJeCt: x\r\nTO: b@example.net\r\nto: c@example.net\r\n\r\nbody\r\n")},
		{"8bit-tabs-no-final-crlf", []byte("From: a@example.com\r\nSubject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\t\tx  \r\n\r\nlast")},
		{"folded-with-tabs", []byte("From: a@example.com\r\nSubject: one\r\n\ttwo\r\n   three\r\nTo: b@example.net,\r\n\tc@example.net\r\n\r\nx\r\n")},
		{"bare-lf-body", []byte("From: a@example.com\r\n\r\none\ntwo  \n\nthree\n\n\n")},
	}
}
