package dkim_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

// RFC 8058 §3.1: both List-Unsubscribe fields are signed whenever they
// are present, even when Headers leaves them out.
func TestListUnsubscribeAlwaysSigned(t *testing.T) {
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "s", Key: key, Headers: []string{"Subject"}, Oversign: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.org\r\nSubject: hi\r\nList-Unsubscribe: <https://example.org/u/x>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nbody\r\n"
	var out bytes.Buffer
	if err := s.Sign(&out, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	h := regexp.MustCompile(`[; ]h=([^;]+);`).FindStringSubmatch(strings.ReplaceAll(out.String(), "\r\n ", ""))
	if h == nil {
		t.Fatalf("no h= in\n%s", out.String())
	}
	got := strings.ToLower(h[1])
	for _, want := range []string{"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} {
		if !strings.Contains(":"+got+":", ":"+want+":") {
			t.Errorf("h=%s lacks %s", h[1], want)
		}
	}
}
