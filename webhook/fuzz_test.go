package webhook

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary headers and bodies: it must not
// panic, every error must match exactly one of its sentinels, and it may
// accept only a header that holds the true signature.
func FuzzVerify(f *testing.F) {
	f.Add("t=1700000000,v1="+vecSig1, vecBody)
	f.Add("t=1700000000,v1="+vecSig1+",v1="+vecSig2, vecBody)
	f.Add(" t=01700000000 , v1=00 ,,", "")
	f.Add("t=,v1=,=,==,t", "{}")
	f.Add("t=99999999999999999999,v1=zz", "x")
	f.Fuzz(func(t *testing.T, header, body string) {
		err := Verify(header, []byte(body), vecTime, 0, vecSecret1)
		if err == nil {
			h, perr := parseSignature(header)
			if perr != nil {
				t.Fatalf("Verify accepted %q, which does not parse: %v", header, perr)
			}
			want := hex.EncodeToString(mac(vecSecret1, h.ts, []byte(body)))
			if !strings.Contains(strings.ToLower(header), want) {
				t.Fatalf("Verify accepted %q without the signature %s", header, want)
			}
			return
		}
		n := 0
		for _, s := range []error{ErrNoSignature, ErrBadSignature, ErrExpired} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("Verify(%q) = %v, matching %d sentinels", header, err, n)
		}
		// Signing the body now always verifies.
		if err := Verify(Sign(vecTime, []byte(body), vecSecret1), []byte(body), vecTime.Add(time.Second), 0, vecSecret1); err != nil {
			t.Fatalf("Verify(Sign(%q)) = %v", body, err)
		}
	})
}
