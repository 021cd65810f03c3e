package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func TestHandler(t *testing.T) {
	s, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddHost("mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			if strings.HasPrefix(rcpt, "gone@") {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "gone"}
			}
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	s.AddDomain("example.com", "mx.example.com")
	h := handler{c: s.Client()}

	body := `{"from":"me@example.org","to":["a@example.com","gone@example.com"],"subject":"Hi","text":"Hello"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/send", strings.NewReader(body)))
	if rec.Code != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var res relay.Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Recipients) != 2 || res.Recipients[0].Status != relay.Delivered || res.Recipients[1].Status != relay.Bounced || res.Recipients[1].Code != 550 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(rec.Body.String(), `"status":"bounced"`) {
		t.Errorf("JSON does not name the status: %s", rec.Body)
	}

	for _, bad := range []string{`{"from":"nope","to":["a@example.com"],"text":"x"}`, `{"from":"me@example.org","to":[],"text":"x"}`, `not json`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/send", strings.NewReader(bad)))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, rec.Code)
		}
	}
}
