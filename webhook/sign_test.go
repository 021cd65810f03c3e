package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVector(t *testing.T) {
	got := Sign(vecTime, []byte(vecBody), vecSecret1)
	if want := "t=1700000000,v1=" + vecSig1; got != want {
		t.Errorf("Sign = %s\nwant  %s", got, want)
	}
	got = Sign(vecTime, []byte(vecBody), vecSecret1, nil, vecSecret2)
	if want := "t=1700000000,v1=" + vecSig1 + ",v1=" + vecSig2; got != want {
		t.Errorf("Sign with two secrets (and an empty one) = %s\nwant %s", got, want)
	}
	if got := Sign(vecTime, []byte(vecBody)); got != "t=1700000000" {
		t.Errorf("Sign without secrets = %s", got)
	}
}

// macHex is an independent HMAC-SHA256 of ts "." body.
func macHex(secret []byte, ts, body string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts + "." + body))
	return hex.EncodeToString(h.Sum(nil))
}

func TestVerify(t *testing.T) {
	body := vecBody
	good := "t=1700000000,v1=" + vecSig1
	other := []byte("another-secret-of-enough-length")
	tests := []struct {
		name    string
		header  string
		body    string
		now     time.Time
		tol     time.Duration
		secrets [][]byte
		want    error // nil, ErrNoSignature, ErrBadSignature or ErrExpired
	}{
		{"good", good, body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"good, receiver accepts two", good, body, vecTime, 0, [][]byte{other, vecSecret1}, nil},
		{"wrong secret", good, body, vecTime, 0, [][]byte{other}, ErrBadSignature},
		{"tampered body", good, strings.Replace(body, `"a"`, `"c"`, 1), vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"body with a space more", good, body + " ", vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"4 min old", good, body, vecTime.Add(4 * time.Minute), 0, [][]byte{vecSecret1}, nil},
		{"6 min old", good, body, vecTime.Add(6 * time.Minute), 0, [][]byte{vecSecret1}, ErrExpired},
		{"4 min ahead", good, body, vecTime.Add(-4 * time.Minute), 0, [][]byte{vecSecret1}, nil},
		{"6 min ahead", good, body, vecTime.Add(-6 * time.Minute), 0, [][]byte{vecSecret1}, ErrExpired},
		{"negative tolerance is the default", good, body, vecTime.Add(4 * time.Minute), -time.Second, [][]byte{vecSecret1}, nil},
		{"tolerance 1 min, 2 min old", good, body, vecTime.Add(2 * time.Minute), time.Minute, [][]byte{vecSecret1}, ErrExpired},
		{"tolerance 1 h, 30 min old", good, body, vecTime.Add(30 * time.Minute), time.Hour, [][]byte{vecSecret1}, nil},
		{"stale forgery is bad, not expired", good, body + "x", vecTime.Add(time.Hour), 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"retimed signature", "t=1700000001,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},

		// Rotation: signed with the new and the old secret.
		{"rotation, old receiver", good + ",v1=" + vecSig2, body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"rotation, new receiver", good + ",v1=" + vecSig2, body, vecTime, 0, [][]byte{vecSecret2}, nil},
		{"rotation, new first", "t=1700000000,v1=" + vecSig2 + ",v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"rotation, neither", good + ",v1=" + vecSig2, body, vecTime, 0, [][]byte{other}, ErrBadSignature},

		// Parsing.
		{"spaces around elements", " t=1700000000 ,\tv1=" + vecSig1 + " ", body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"empty elements", ",t=1700000000,,v1=" + vecSig1 + ",", body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"upper-case hex", "t=1700000000,v1=" + strings.ToUpper(vecSig1), body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"unknown element", "t=1700000000,v0=dead,v2=beef,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"v1 not hex, then good", "t=1700000000,v1=xyz,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"leading zeros are signed as they are", "t=01700000000,v1=" + macHex(vecSecret1, "01700000000", body), body, vecTime, 0, [][]byte{vecSecret1}, nil},
		{"leading zeros, signature of the plain digits", "t=01700000000,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"empty", "", body, vecTime, 0, [][]byte{vecSecret1}, ErrNoSignature},
		{"blank", " \t ", body, vecTime, 0, [][]byte{vecSecret1}, ErrNoSignature},
		{"timestamp only", "t=1700000000", body, vecTime, 0, [][]byte{vecSecret1}, ErrNoSignature},
		{"no timestamp", "v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"two timestamps", "t=1700000000,t=1700000000,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"timestamp not a number", "t=soon,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"signed timestamp", "t=+1700000000,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"negative timestamp", "t=-1,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"empty timestamp", "t=,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"timestamp overflows", "t=99999999999999999999,v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"element without =", "t=1700000000,v1" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"garbage", "garbage", body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"semicolons", "t=1700000000;v1=" + vecSig1, body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"empty v1", "t=1700000000,v1=", body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"truncated v1", "t=1700000000,v1=" + vecSig1[:62], body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},
		{"too long", "t=1700000000,v1=" + vecSig1 + strings.Repeat(",x=y", 2000), body, vecTime, 0, [][]byte{vecSecret1}, ErrBadSignature},

		// Secrets.
		{"no secret", good, body, vecTime, 0, nil, ErrBadSignature},
		{"only an empty secret", "t=1700000000,v1=" + macHex(nil, "1700000000", body), body, vecTime, 0, [][]byte{{}}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.header, []byte(tt.body), tt.now, tt.tol, tt.secrets...)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrNoSignature, ErrBadSignature, ErrExpired} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Verify = %v, which also matches %v", err, other)
				}
			}
		})
	}
}

// A signature made now verifies now, for any body, and not a moment
// past the tolerance.
func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Now()
	for _, body := range []string{"", "{}", vecBody, strings.Repeat("x", 1<<16)} {
		h := Sign(now, []byte(body), vecSecret1, vecSecret2)
		if err := Verify(h, []byte(body), now, 0, vecSecret2); err != nil {
			t.Errorf("Verify(Sign) of %d octets: %v", len(body), err)
		}
		if err := Verify(h, []byte(body), now.Add(DefaultTolerance+time.Second), 0, vecSecret2); !errors.Is(err, ErrExpired) {
			t.Errorf("Verify(Sign) after the tolerance: %v, want ErrExpired", err)
		}
	}
}
