package bounce_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/bounce"
)

func TestCategoryNames(t *testing.T) {
	want := map[bounce.Category]string{
		bounce.Other:            "other",
		bounce.InvalidRecipient: "invalid-recipient",
		bounce.UnknownDomain:    "unknown-domain",
		bounce.MailboxFull:      "mailbox-full",
		bounce.MailboxDisabled:  "mailbox-disabled",
		bounce.MessageTooLarge:  "message-too-large",
		bounce.ContentBlock:     "content-block",
		bounce.PolicyBlock:      "policy-block",
		bounce.RateLimited:      "rate-limited",
		bounce.AuthFailure:      "auth-failure",
		bounce.TLSRequired:      "tls-required",
		bounce.Routing:          "routing",
	}
	for c, name := range want {
		if got := c.String(); got != name {
			t.Errorf("%d.String() = %q, want %q", int(c), got, name)
		}
		b, err := c.MarshalText()
		if err != nil || string(b) != name {
			t.Errorf("%v.MarshalText() = %q, %v", c, b, err)
		}
		var back bounce.Category
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
		if p, err := bounce.ParseCategory(name); err != nil || p != c {
			t.Errorf("ParseCategory(%q) = %v, %v", name, p, err)
		}
	}
	if bounce.Category(0) != bounce.Other {
		t.Error("the zero Category is not Other")
	}
}

func TestCategoryErrors(t *testing.T) {
	for _, bad := range []string{"", "Other", "INVALID-RECIPIENT", "invalid_recipient", "invalidrecipient", " other", "bounce"} {
		_, err := bounce.ParseCategory(bad)
		if err == nil || !strings.Contains(err.Error(), "bounce:") || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseCategory(%q): error %v", bad, err)
		}
		c := bounce.RateLimited
		if err := c.UnmarshalText([]byte(bad)); err == nil || !strings.Contains(err.Error(), "bounce:") {
			t.Errorf("UnmarshalText(%q): error %v", bad, err)
		}
		if c != bounce.RateLimited {
			t.Errorf("UnmarshalText(%q) changed the category to %v", bad, c)
		}
	}
	for _, c := range []bounce.Category{-1, 12, 99} {
		if _, err := c.MarshalText(); err == nil || !strings.Contains(err.Error(), "bounce:") {
			t.Errorf("Category(%d).MarshalText(): error %v", int(c), err)
		}
		if s := c.String(); !strings.HasPrefix(s, "Category(") {
			t.Errorf("Category(%d).String() = %q", int(c), s)
		}
	}
}

// Categories travel as their names in JSON, as map keys too.
func TestCategoryJSON(t *testing.T) {
	in := struct {
		C  bounce.Category         `json:"c"`
		By map[bounce.Category]int `json:"by"`
	}{bounce.MailboxFull, map[bounce.Category]int{bounce.RateLimited: 2}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"c":"mailbox-full","by":{"rate-limited":2}}` {
		t.Errorf("json: %s", b)
	}
	out := in
	out.C, out.By = 0, nil
	if err := json.Unmarshal(b, &out); err != nil || out.C != bounce.MailboxFull || out.By[bounce.RateLimited] != 2 {
		t.Errorf("json round trip: %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"c":"nope"}`), &out); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("json with a bad name: %v", err)
	}
}
