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

// mailDKIMScript verifies every message of the job file with Perl's
// Mail::DKIM (Debian package libmail-dkim-perl), serving keys from the
// job's records instead of DNS, and prints one JSON result per signature:
// its algorithm and Mail::DKIM's verdict.
const mailDKIMScript = `
use strict;
use warnings;
use JSON::PP;
use Net::DNS;
use Mail::DKIM::Verifier;

open(my $jf, '<', $ARGV[0]) or die "job: $!";
my $job = decode_json(do { local $/; <$jf> });
my %records = %{ $job->{records} };
{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        $name =~ s/\.$//;
        my $txt = $records{$name};
        return () unless defined $txt && $type eq 'TXT';
        return Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => [unpack('(A255)*', $txt)]);
    };
}
my @out;
for my $m (@{ $job->{messages} }) {
    open(my $fh, '<:raw', $m->{path}) or die "$m->{path}: $!";
    my $data = do { local $/; <$fh> };
    my $v = Mail::DKIM::Verifier->new();
    $v->PRINT($data);
    $v->CLOSE();
    my $idx = 0;
    for my $sig ($v->signatures) {
        push @out, { name => $m->{name}, idx => $idx++, algorithm => ($sig->algorithm // ''),
                     result => ($sig->result // ''), detail => ($sig->result_detail // '') };
    }
}
print encode_json(\@out);
`

type mailDKIMResult struct {
	Name      string `json:"name"`
	Idx       int    `json:"idx"`
	Algorithm string `json:"algorithm"`
	Result    string `json:"result"`
	Detail    string `json:"detail"`
}

// TestMailDKIM verifies our RSA signatures of every test message under
// every test configuration with Perl's Mail::DKIM, a third implementation
// beside go-msgauth (which checks them here too, Ed25519 included) and
// dkimpy (TestDkimpy). This Mail::DKIM has no Ed25519.
func TestMailDKIM(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command("perl", "-MMail::DKIM::Verifier", "-MNet::DNS", "-MJSON::PP", "-e", "1").CombinedOutput(); err != nil {
		t.Skipf("Perl Mail::DKIM not available (install the Debian package libmail-dkim-perl; .ci/run does): %v: %s", err, bytes.TrimSpace(out))
	}
	cfgs, recs := testConfigs(t)
	dir := t.TempDir()
	type entry struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		wantOK bool
	}
	var job []entry
	// Each message as the receiver gets it: the SMTP client ends every
	// line with CRLF (Mail::DKIM does not read a bare LF as one).
	add := func(name string, signed []byte, wantOK bool) {
		path := filepath.Join(dir, fmt.Sprintf("%03d.eml", len(job)))
		if err := os.WriteFile(path, wireForm(signed), 0o600); err != nil {
			t.Fatal(err)
		}
		job = append(job, entry{Name: name, Path: path, wantOK: wantOK})
	}
	all := messages(t)
	for _, extra := range extraMessages(t) {
		all[extra.name] = extra.msg
	}
	for cname, cfg := range cfgs {
		s := mustSigner(t, cfg...)
		for mname, msg := range all {
			signed := sign(t, s, msg)
			verifyAll(t, wireForm(signed), recs, len(cfg)) // go-msgauth too
			add(cname+"/"+mname, signed, true)
		}
	}
	// The checker must be able to say no.
	msg := all["folded-headers"]
	signed := sign(t, mustSigner(t, cfgs["rsa-relaxed"]...), msg)
	sigs := string(signed[:len(signed)-len(msg)])
	add("tampered/body", []byte(sigs+strings.Replace(string(msg), "Body.", "Body!", 1)), false)
	add("tampered/subject", []byte(sigs+strings.Replace(string(msg), "A subject", "B subject", 1)), false)

	script := filepath.Join(dir, "verify.pl")
	if err := os.WriteFile(script, []byte(mailDKIMScript), 0o600); err != nil {
		t.Fatal(err)
	}
	jobJSON, err := json.Marshal(map[string]any{"records": recs, "messages": job})
	if err != nil {
		t.Fatal(err)
	}
	jobFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobFile, jobJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("perl", script, jobFile)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Mail::DKIM: %v\n%s", err, stderr.Bytes())
	}
	var results []mailDKIMResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("Mail::DKIM output: %v\n%s", err, out)
	}
	byName := map[string][]mailDKIMResult{}
	for _, r := range results {
		byName[r.Name] = append(byName[r.Name], r)
	}
	sort.Slice(job, func(i, j int) bool { return job[i].Name < job[j].Name })
	checked := 0
	for _, m := range job {
		rsa := 0
		for _, r := range byName[m.Name] {
			if r.Algorithm != "rsa-sha256" {
				continue // Ed25519: unknown to this Mail::DKIM
			}
			rsa++
			checked++
			if ok := r.Result == "pass"; ok != m.wantOK {
				t.Errorf("%s: signature %d: Mail::DKIM says %s (%s), want ok=%v", m.Name, r.Idx, r.Result, r.Detail, m.wantOK)
			}
		}
		if want := strings.Count(string(signedPrefix(t, m.Path)), "a=rsa-sha256"); rsa != want {
			t.Errorf("%s: Mail::DKIM saw %d RSA signatures, want %d", m.Name, rsa, want)
		}
	}
	if checked == 0 {
		t.Fatal("no RSA signature checked")
	}
	t.Logf("Mail::DKIM checked %d RSA signatures in %d messages", checked, len(job))
}

// signedPrefix is the DKIM-Signature fields at the top of the message in
// path.
func signedPrefix(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for len(b) > 0 && (bytes.HasPrefix(b, []byte("DKIM-Signature:")) || b[0] == ' ' || b[0] == '\t') {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			break
		}
		out, b = append(out, b[:i+2]...), b[i+2:]
	}
	return out
}
