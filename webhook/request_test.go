package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestVerifyRequest(t *testing.T) {
	type result struct {
		p   *Payload
		err error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := VerifyRequest(r, 0, vecSecret2, vecSecret1)
		results <- result{p, err}
		if err != nil {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	post := func(t *testing.T, body []byte, sigs ...string) (*Payload, int, error) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sigs {
			req.Header.Add(SignatureHeader, s)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-results
		return r.p, resp.StatusCode, r.err
	}

	body := []byte(vecBody)
	t.Run("good", func(t *testing.T) {
		p, code, err := post(t, body, Sign(time.Now(), body, vecSecret1))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("VerifyRequest = %v, status %d", err, code)
		}
		if p.Endpoint != "orders" || p.First != 1 || p.Last != 2 || len(p.Seqs) != 2 || p.Seqs[1] != 2 ||
			len(p.Events) != 2 || string(p.Events[0]) != `{"id":"a"}` || string(p.Events[1]) != `{"id":"b"}` {
			t.Errorf("payload %+v", p)
		}
		if id := p.DeliveryID(); id != vecDelivr {
			t.Errorf("DeliveryID = %s, want %s", id, vecDelivr)
		}
	})
	tests := []struct {
		name string
		body []byte
		sigs []string
		want error
	}{
		{"no header", body, nil, ErrNoSignature},
		{"wrong secret", body, []string{Sign(time.Now(), body, []byte("not-the-secret-at-all"))}, ErrBadSignature},
		{"tampered", body, []string{Sign(time.Now(), append([]byte{' '}, body...), vecSecret1)}, ErrBadSignature},
		{"stale", body, []string{Sign(time.Now().Add(-time.Hour), body, vecSecret1)}, ErrExpired},
		{"future", body, []string{Sign(time.Now().Add(time.Hour), body, vecSecret1)}, ErrExpired},
		{"two headers", body, []string{Sign(time.Now(), body, vecSecret1), Sign(time.Now(), body, vecSecret1)}, ErrBadSignature},
		{"malformed header", body, []string{"v1=00"}, ErrBadSignature},
		{"signed, not JSON", []byte("hello"), []string{Sign(time.Now(), []byte("hello"), vecSecret1)}, ErrInvalidPayload},
		{"signed, no endpoint", []byte(`{"first":1,"last":1,"seqs":[1],"events":[1]}`), nil, ErrInvalidPayload},
		{"signed, seqs and events differ", []byte(`{"endpoint":"e","first":1,"last":2,"seqs":[1],"events":[1,2]}`), nil, ErrInvalidPayload},
		{"signed, seqs out of order", []byte(`{"endpoint":"e","first":1,"last":3,"seqs":[3,1],"events":[1,2]}`), nil, ErrInvalidPayload},
		{"signed, seq outside", []byte(`{"endpoint":"e","first":1,"last":3,"seqs":[1,4],"events":[1,2]}`), nil, ErrInvalidPayload},
		{"signed, first after last", []byte(`{"endpoint":"e","first":3,"last":1,"seqs":[],"events":[]}`), nil, ErrInvalidPayload},
		{"too large", bytes.Repeat([]byte{' '}, MaxBodySize+1), []string{"t=1,v1=00"}, ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := tt.sigs
			if sigs == nil && tt.want == ErrInvalidPayload {
				sigs = []string{Sign(time.Now(), tt.body, vecSecret1)}
			}
			p, code, err := post(t, tt.body, sigs...)
			if !errors.Is(err, tt.want) || p != nil {
				t.Fatalf("VerifyRequest = %v, %v; want %v", p, err, tt.want)
			}
			if code != http.StatusUnauthorized {
				t.Errorf("status %d", code)
			}
		})
	}
	t.Run("largest body", func(t *testing.T) {
		big := []byte(`{"endpoint":"e","first":1,"last":1,"seqs":[1],"events":["` + strings.Repeat("x", MaxBodySize-100) + `"]}`)
		big = append(big, bytes.Repeat([]byte{' '}, MaxBodySize-len(big))...)
		if _, _, err := post(t, big, Sign(time.Now(), big, vecSecret1)); err != nil {
			t.Fatalf("VerifyRequest of %d octets: %v", len(big), err)
		}
	})
}
