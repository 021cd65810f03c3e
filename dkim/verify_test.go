package dkim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

func TestVerifyResults(t *testing.T) {
	cfgs, recs := testConfigs(t)
	signed := sign(t, mustSigner(t, cfgs["dual-mixed"]...), messages(t)["plain"])
	res := verifyAll(t, signed, recs, 2)
	want := []struct{ d, s, a, i string }{
		{"example.com", "ed", "ed25519-sha256", "@example.com"},
		{"mail.example.com", "s2026_a", "rsa-sha256", "alice@mail.example.com"},
	}
	for i, w := range want {
		r := res[i]
		if r.Domain != w.d || r.Selector != w.s || r.Algorithm != w.a || r.Identifier != w.i {
			t.Errorf("result %d: %+v, want %+v", i, r, w)
		}
		if r.Time.IsZero() || len(r.HeaderKeys) == 0 || !strings.EqualFold(r.HeaderKeys[0], "from") {
			t.Errorf("result %d: t=%v h=%v", i, r.Time, r.HeaderKeys)
		}
	}
}

func TestVerifyFailures(t *testing.T) {
	cfgs, recs := testConfigs(t)
	signed := sign(t, mustSigner(t, cfgs["dual"]...), messages(t)["plain"])
	ctx := context.Background()

	tempErr := func(_ context.Context, name string) ([]string, error) {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	timeout := func(ctx context.Context, name string) ([]string, error) {
		return nil, fmt.Errorf("resolver: %w", context.DeadlineExceeded)
	}
	wrappedTemp := func(ctx context.Context, name string) ([]string, error) {
		return nil, fmt.Errorf("my cache: %w", dkim.ErrTempFail)
	}
	noKey := keyRecords{}.lookup
	wrongKey := func(ctx context.Context, name string) ([]string, error) {
		// Each selector gets the other's key.
		other := strings.Replace(name, "ed.", "rsa.", 1)
		if other == name {
			other = strings.Replace(name, "rsa.", "ed.", 1)
		}
		return recs.lookup(ctx, other)
	}
	revoked := func(ctx context.Context, name string) ([]string, error) {
		return []string{"v=DKIM1; p="}, nil
	}
	for _, tc := range []struct {
		name   string
		lookup func(context.Context, string) ([]string, error)
		want   error
	}{
		{"temporary DNS error", tempErr, dkim.ErrTempFail},
		{"timeout", timeout, dkim.ErrTempFail},
		{"wrapped ErrTempFail", wrappedTemp, dkim.ErrTempFail},
		{"no key", noKey, dkim.ErrPermFail},
		{"wrong key", wrongKey, dkim.ErrPermFail},
		{"revoked key", revoked, dkim.ErrPermFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := dkim.Verify(ctx, bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: tc.lookup})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 {
				t.Fatalf("%d results", len(res))
			}
			for _, r := range res {
				if !errors.Is(r.Err, tc.want) {
					t.Errorf("s=%s: %v, want %v", r.Selector, r.Err, tc.want)
				}
				if r.Err != nil && (!strings.HasPrefix(r.Err.Error(), "dkim: ") || strings.HasPrefix(r.Err.Error(), "dkim: dkim:")) {
					t.Errorf("error text %q", r.Err)
				}
			}
		})
	}
}

func TestVerifyMessageLevel(t *testing.T) {
	cfgs, recs := testConfigs(t)
	ctx := context.Background()
	opts := &dkim.VerifyOptions{LookupTXT: recs.lookup}

	res, err := dkim.Verify(ctx, bytes.NewReader(messages(t)["plain"]), opts)
	if err != nil || len(res) != 0 {
		t.Errorf("unsigned message: %v, %v", res, err)
	}
	if _, err := dkim.Verify(ctx, strings.NewReader("From: a@b.c\r\n"), opts); !errors.Is(err, dkim.ErrHeaderNotTerminated) {
		t.Errorf("unterminated header: %v", err)
	}

	// Three signatures, MaxSignatures 2.
	s := mustSigner(t, cfgs["dual"][0], cfgs["dual"][1], cfgs["dual"][0])
	signed := sign(t, s, messages(t)["plain"])
	res, err = dkim.Verify(ctx, bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: recs.lookup, MaxSignatures: 2})
	if !errors.Is(err, dkim.ErrTooManySignatures) || len(res) != 2 {
		t.Errorf("too many: %d results, %v", len(res), err)
	}
	verifyAll(t, signed, recs, 3)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dkim.Verify(cctx, bytes.NewReader(signed), opts); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}

	// A malformed signature is a PERMFAIL for it, not an error.
	bad := "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; garbage\r\n" + string(messages(t)["plain"])
	res, err = dkim.Verify(ctx, strings.NewReader(bad), opts)
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, dkim.ErrPermFail) {
		t.Errorf("malformed signature: %+v, %v", res, err)
	}
}
