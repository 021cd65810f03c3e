package dnsclient

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/miekg/dns"
)

func writeFile(name, s string) error { return os.WriteFile(name, []byte(s), 0o600) }

func TestDecode(t *testing.T) {
	req := new(dns.Msg)
	req.SetQuestion("example.com.", dns.TypeMX)
	req.Id = 7
	m := mxReply(req, "MX.Example.COM.")
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 30}
	}
	m.Answer = append(m.Answer,
		&dns.A{Hdr: hdr("a.example.", dns.TypeA), A: net.ParseIP("192.0.2.1")},
		&dns.AAAA{Hdr: hdr("a.example.", dns.TypeAAAA), AAAA: net.ParseIP("2001:db8::1")},
		&dns.TXT{Hdr: hdr("a.example.", dns.TypeTXT), Txt: []string{"v=STSv1; ", "id=1"}},
		&dns.TLSA{Hdr: hdr("a.example.", dns.TypeTLSA), Usage: 3, Selector: 1, MatchingType: 1, Certificate: "abcd"},
		&dns.CNAME{Hdr: hdr("b.example.", dns.TypeCNAME), Target: "C.example."},
		&dns.NS{Hdr: hdr("a.example.", dns.TypeNS), Ns: "ns.example."},
		&dns.A{Hdr: dns.RR_Header{Name: "chaos.example.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS}, A: net.ParseIP("192.0.2.1")},
	)
	m.Ns = []dns.RR{&dns.SOA{Hdr: hdr("example.com.", dns.TypeSOA), Ns: "ns.", Mbox: "h.", Minttl: 10}}
	m.AuthenticatedData = true
	r, err := Decode(Query{Name: "example.com.", Type: TypeMX}, 7, pack(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 6 || !r.Authenticated || !r.HasSOA || r.NegTTL != 10 {
		t.Fatalf("got %+v", r)
	}
	if a := r.Answer[0]; a.Target != "mx.example.com." || a.Name != "example.com." {
		t.Errorf("MX %+v", a)
	}
	if a := r.Answer[1]; a.Addr.String() != "192.0.2.1" {
		t.Errorf("A %+v", a)
	}
	if a := r.Answer[2]; a.Addr.String() != "2001:db8::1" {
		t.Errorf("AAAA %+v", a)
	}
	if a := r.Answer[3]; a.Text != "v=STSv1; id=1" {
		t.Errorf("TXT %+v", a)
	}
	if a := r.Answer[4]; a.Usage != 3 || string(a.Data) != "\xab\xcd" {
		t.Errorf("TLSA %+v", a)
	}
	if a := r.Answer[5]; a.Target != "c.example." {
		t.Errorf("CNAME %+v", a)
	}
	// TXT octets come back raw, not in presentation form.
	txt := mxReply(req)
	txt.Question[0].Qtype = dns.TypeTXT
	txt.Answer = []dns.RR{&dns.TXT{Hdr: hdr("example.com.", dns.TypeTXT), Txt: []string{"a\"b\x01c\\\\d"}}}
	r, err = Decode(Query{Name: "example.com.", Type: TypeTXT}, 7, pack(t, txt))
	if err != nil || len(r.Answer) != 1 || r.Answer[0].Text != "a\"b\x01c\\d" {
		t.Fatalf("TXT: %+v, %v", r, err)
	}
	for name, q := range map[string]Query{
		"name": {Name: "other.example.", Type: TypeMX},
		"type": {Name: "example.com.", Type: TypeA},
	} {
		if _, err := Decode(q, 7, pack(t, m)); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s mismatch: %v", name, err)
		}
	}
	if _, err := Decode(Query{Name: "EXAMPLE.com.", Type: TypeMX}, 7, pack(t, m)); err != nil {
		t.Errorf("case-insensitive question: %v", err)
	}
	if _, err := Decode(Query{Name: "example.com.", Type: TypeMX}, 8, pack(t, m)); !errors.Is(err, ErrMismatch) {
		t.Errorf("id mismatch: %v", err)
	}
}

// FuzzDecode feeds hostile bytes to the answer parser: errors, never panics,
// and what it returns respects its own rules.
func FuzzDecode(f *testing.F) {
	req := new(dns.Msg)
	req.SetQuestion("example.com.", dns.TypeMX)
	req.Id = 1
	f.Add(pack(f, mxReply(req, "a.example.", "b.example.")))
	m := mxReply(req)
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 5}, Ns: "ns.", Mbox: "h.", Minttl: 10}}
	f.Add(pack(f, m))
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(Query{Name: "example.com.", Type: TypeMX}, 1, b)
		if err != nil {
			if r != nil {
				t.Fatal("response with error")
			}
			return
		}
		for _, rec := range r.Answer {
			switch rec.Type {
			case TypeA:
				if !rec.Addr.Is4() {
					t.Fatalf("A record %v", rec.Addr)
				}
			case TypeAAAA:
				if !rec.Addr.Is6() {
					t.Fatalf("AAAA record %v", rec.Addr)
				}
			}
		}
	})
}
