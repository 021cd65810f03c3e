package lint

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

const cleanText = `Hello Ada,

your March invoice is ready. The total is 42 euros and it is due on
the first of April. See https://example.com/invoices/3 for details.

Thanks, the Example team`

const cleanHTML = `<!doctype html><html><head><title>Invoice</title><style>p{margin:0}</style></head>
<body><p>Hello Ada,</p>
<p>your March invoice is ready. The total is 42 euros and it is due on
the first of April. See <a href="https://example.com/invoices/3">example.com</a> for details.</p>
<p>Thanks, the Example team</p></body></html>`

// clean returns a message that no rule flags.
func clean() *mime.Message {
	return &mime.Message{
		From:    mail.Address{Name: "Example", Address: "billing@example.com"},
		To:      []mail.Address{{Address: "ada@example.org"}},
		Subject: "Your March invoice",
		Text:    cleanText,
		HTML:    cleanHTML,
	}
}

// withHTML returns clean() with body as the HTML <body>.
func withHTML(body string) *mime.Message {
	m := clean()
	m.HTML = "<html><body>" + body + "</body></html>"
	return m
}

type lintCase struct {
	name string
	rule string // "" for the clean message
	m    *mime.Message
	o    *Options
}

func cases() []lintCase {
	var cs []lintCase
	add := func(name, rule string, o *Options, f func(m *mime.Message) *mime.Message) {
		cs = append(cs, lintCase{name, rule, f(clean()), o})
	}
	add("clean", "", nil, func(m *mime.Message) *mime.Message { return m })
	add("clean list mail", "", &Options{List: true}, func(m *mime.Message) *mime.Message {
		m.ListUnsubscribe = "https://example.com/unsubscribe?u=1"
		m.Header = map[string][]string{"List-Id": {"Invoices <invoices.example.com>"}}
		return m
	})
	add("missing text", ruleMissingText, nil, func(m *mime.Message) *mime.Message {
		m.Text = ""
		m.Attachments = []mime.Attachment{{Filename: "invoice.pdf", Data: []byte("%PDF-1.4 fake")}}
		return m
	})
	add("html only", ruleHTMLOnly, nil, func(m *mime.Message) *mime.Message {
		m.Text = ""
		return m
	})
	add("image only", ruleImageOnly, nil, func(m *mime.Message) *mime.Message {
		return withHTML(`<a href="https://example.com/"><img src="https://example.com/offer.png" alt=""></a>`)
	})
	add("text and html differ", ruleTextHTMLDiffer, nil, func(m *mime.Message) *mime.Message {
		return withHTML(`<p>Congratulations winner! Claim your exclusive prize money today,
			limited offer for selected customers only.</p>`)
	})
	add("link text shows another domain", ruleLinkText, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, `">example.com</a>`, `">www.paypal.com</a>`, 1)
		return m
	})
	add("list mail without List-Unsubscribe", ruleListUnsub, &Options{List: true}, func(m *mime.Message) *mime.Message {
		m.Header = map[string][]string{"List-Id": {"<invoices.example.com>"}}
		return m
	})
	add("List-Unsubscribe without List-Id", ruleListID, nil, func(m *mime.Message) *mime.Message {
		m.ListUnsubscribe = "mailto:unsubscribe@example.com"
		return m
	})
	add("over 10 MB", ruleSize, nil, func(m *mime.Message) *mime.Message {
		m.Attachments = []mime.Attachment{{Filename: "big.bin", Data: bytes.Repeat([]byte{0x5a}, 8<<20)}}
		return m
	})
	add("html over 102 KB", ruleHTMLClipped, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, "</body>", "<!--"+strings.Repeat("padding ", 14<<10)+"--></body>", 1)
		return m
	})
	add("bare IP link", ruleIPLink, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, "https://example.com/invoices/3", "http://192.0.2.7/invoices/3", 1)
		m.HTML = strings.Replace(m.HTML, `">example.com</a>`, `">our site</a>`, 1)
		return m
	})
	add("URL shortener", ruleShortener, nil, func(m *mime.Message) *mime.Message {
		m.Text = strings.Replace(cleanText, "https://example.com/invoices/3", "https://bit.ly/3xYz", 1)
		return m
	})
	add("display:none", ruleHidden, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, "<body>", `<body><div style="display: none !important">cheap pills</div>`, 1)
		return m
	})
	add("font-size:0", ruleHidden, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, "<body>", `<body><span style="FONT-SIZE:0px">cheap pills</span>`, 1)
		return m
	})
	add("white on white", ruleHidden, nil, func(m *mime.Message) *mime.Message {
		m.HTML = strings.Replace(cleanHTML, "<body>", `<body><p><font color="#FFFFFF">cheap pills</font></p>`, 1)
		return m
	})
	add("subject all caps", ruleSubjectCaps, nil, func(m *mime.Message) *mime.Message {
		m.Subject = "HUGE SALE TODAY!!!"
		return m
	})
	add("missing subject", ruleNoSubject, nil, func(m *mime.Message) *mime.Message {
		m.Subject = ""
		return m
	})
	return cs
}

func rules(fs []Finding) []string {
	var r []string
	for _, f := range fs {
		r = append(r, f.Rule)
	}
	return r
}

func TestRules(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			got := Message(c.m, c.o)
			if c.rule == "" {
				if len(got) != 0 {
					t.Fatalf("clean message has findings: %v", got)
				}
				return
			}
			if !slices.Contains(rules(got), c.rule) {
				t.Fatalf("rule %s missing; got %v", c.rule, got)
			}
			// Only html-only brings another rule with it (missing-text).
			for _, f := range got {
				if f.Rule != c.rule && !(c.rule == ruleHTMLOnly && f.Rule == ruleMissingText) {
					t.Errorf("unexpected finding %v", f)
				}
				if f.Message == "" || f.Mirrors == "" || f.Severity.String() == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			t.Log(got)
		})
	}
}

func TestRawAgrees(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			want := Message(c.m, c.o)
			got := Raw(b, c.o)
			if !slices.Equal(got, want) {
				t.Fatalf("Raw and Message disagree:\nRaw:     %v\nMessage: %v", got, want)
			}
		})
	}
}

func TestOrderAndDeterminism(t *testing.T) {
	m := &mime.Message{
		From:    mail.Address{Address: "a@example.com"},
		To:      []mail.Address{{Address: "b@example.com"}},
		Subject: "FREE MONEY NOW",
		HTML: `<a href="http://10.0.0.1/">x</a> <a href="https://bit.ly/a">www.bank.example</a>
			<span style="display:none">one</span><span style="font-size:0">two</span><img src="https://example.com/i.png">`,
	}
	first := Message(m, &Options{List: true})
	for i := 0; i < 20; i++ {
		if got := Message(m, &Options{List: true}); !slices.Equal(got, first) {
			t.Fatalf("run %d differs:\n%v\n%v", i, got, first)
		}
	}
	want := []string{ruleMissingText, ruleHTMLOnly, ruleImageOnly, ruleLinkText, ruleListUnsub, ruleListID,
		ruleIPLink, ruleShortener, ruleHidden, ruleHidden, ruleSubjectCaps}
	if got := rules(first); !slices.Equal(got, want) {
		t.Fatalf("rules %v, want %v\n%v", got, want, first)
	}
}

func TestEdgeCases(t *testing.T) {
	if got := Message(nil, nil); got != nil {
		t.Errorf("Message(nil) = %v", got)
	}
	if got := Raw(nil, nil); len(got) == 0 {
		t.Errorf("Raw(nil) has no findings")
	}
	if got := rules(Raw([]byte("Subject: x\r\nbroken header line\r\n\r\nbody"), nil)); !slices.Equal(got, []string{ruleUnreadable}) {
		t.Errorf("broken header: %v", got)
	}
	// A message Bytes refuses (no From) is still checked.
	m := clean()
	m.From = mail.Address{}
	if got := Message(m, nil); len(got) != 0 {
		t.Errorf("invalid but clean message: %v", got)
	}
	// Lower-case letters, or fewer than 8 capitals, are not all caps.
	for s, want := range map[string]bool{"HELLO WORLD": true, "HELLO World": false, "SALE 50%": false, "ÉTÉ ÉNORME": true, "日本語のメールです": false} {
		if got := allCaps(s); got != want {
			t.Errorf("allCaps(%q) = %v", s, got)
		}
	}
	for _, c := range []struct {
		text, want string
	}{
		{"example.com", "example.com"},
		{"Visit https://Shop.Example.com/path now", "shop.example.com"},
		{"(www.paypal.com)", "www.paypal.com"},
		{"report.pdf", ""},
		{"click here", ""},
		{"mail ada@example.com", ""},
		{"v1.2", ""},
	} {
		if got := textDomain(c.text); got != c.want {
			t.Errorf("textDomain(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	if !sameSite("shop.example.com", "click.example.com") || sameSite("paypal.com", "evil.example") {
		t.Error("sameSite")
	}
}

func TestSeverityText(t *testing.T) {
	b, err := json.Marshal(Finding{Rule: "x", Severity: Warning})
	if err != nil || !strings.Contains(string(b), `"Severity":"warning"`) {
		t.Fatalf("%s %v", b, err)
	}
	if Info.String() != "info" || Severity(9).String() != "Severity(9)" {
		t.Fatal(Info.String(), Severity(9).String())
	}
}
