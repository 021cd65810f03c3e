package preflight

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
)

// dkimState is what the DKIM check of one key leaves for DMARC and the
// bulk-sender rules.
type dkimState struct {
	domain    string // d=
	selector  string // s=
	pass      bool   // published, valid, matching: signatures verify
	unchecked bool
}

// RSA key sizes of RFC 8301 §3.2: verifiers refuse keys under 1024 bits,
// and signers should use 2048.
const (
	rsaMinBits  = 1024
	rsaGoodBits = 2048
)

// checkDKIM checks the published record of every signing key.
func (ck *checker) checkDKIM(ctx context.Context) {
	if len(ck.keys) == 0 {
		ck.add(Finding{
			Check: "dkim.unsigned", Severity: Error, Subject: ck.domain,
			Found:  "no DKIM signing keys: mail is unsigned",
			Fix:    "sign mail: make a key with dkim.GenerateKey, a signer with dkim.NewSigner, and publish dkim.TXTRecord(key.Public()) at <selector>._domainkey." + ck.domain,
			Source: "RFC 6376; Google Email sender guidelines, 2024; Yahoo Sender Best Practices",
		})
		return
	}
	for _, k := range ck.keys {
		ck.dkim = append(ck.dkim, ck.dkimKey(ctx, k))
	}
}

// dkimKey checks the record of one key.
func (ck *checker) dkimKey(ctx context.Context, k key) dkimState {
	st := dkimState{domain: k.domain, selector: k.selector}
	name := dkim.RecordName(k.domain, k.selector)
	add := func(check string, sev Severity, found, fix string, rec *Record, src string) {
		ck.add(Finding{Check: check, Severity: sev, Subject: name, Found: found, Fix: fix, Record: rec, Source: src})
	}
	var want *Record
	if v, err := dkim.TXTRecord(k.pub); err == nil {
		want = &Record{Name: name, Type: "TXT", Value: v}
	}
	if p, ok := k.pub.(*rsa.PublicKey); ok {
		switch bits := p.N.BitLen(); {
		case bits < rsaMinBits:
			add("dkim.weak-key", Error, fmt.Sprintf("the signing key is RSA of %d bits: receivers ignore signatures with keys under %d bits", bits, rsaMinBits),
				"generate a new key (dkim.GenerateKey(dkim.RSA) makes 2048 bits, or use Ed25519 beside it) under a new selector, publish it, then sign with it",
				nil, "RFC 8301 §3.2")
		case bits < rsaGoodBits:
			add("dkim.weak-key", Warning, fmt.Sprintf("the signing key is RSA of %d bits; at least %d are advised", bits, rsaGoodBits),
				"generate a new key (dkim.GenerateKey(dkim.RSA) makes 2048 bits) under a new selector, publish it, then sign with it",
				nil, "RFC 8301 §3.2")
		}
	}
	publish := "publish the key's record"
	txts, err := ck.r.LookupTXT(ctx, name)
	switch {
	case err != nil && mx.IsPermanent(err):
		how := "no TXT record"
		if errors.Is(err, mx.ErrNoDomain) {
			how = "the name does not exist"
		}
		add("dkim.missing", Error, how+": signatures with selector "+k.selector+" fail (no key)", publish, want, "RFC 6376 §3.6.2, §6.1.2")
		return st
	case err != nil:
		st.unchecked = true
		add("dkim.unchecked", Warning, "could not check: "+dnsFailure(err), "check again; if it persists, fix the domain's name servers", nil, "RFC 6376 §6.1.2")
		return st
	case len(txts) > 1:
		add("dkim.multiple", Error, fmt.Sprintf("%d TXT records: verifiers fail or pick one at random", len(txts)),
			"keep one record, the key's", want, "RFC 6376 §3.6.2.2")
		return st
	}
	rec, err := parseDKIMRecord(txts[0])
	if err != nil {
		add("dkim.syntax", Error, fmt.Sprintf("%q: %v", clip(txts[0]), err), "replace it with the key's record", want, "RFC 6376 §3.6.1")
		return st
	}
	if len(rec.key) == 0 {
		add("dkim.revoked", Error, "p= is empty: the key is revoked and signatures with it fail", "publish the key's record, or sign with a key that is published", want, "RFC 6376 §3.6.1")
		return st
	}
	if ok, found := keyMatches(k.pub, rec); !ok {
		add("dkim.mismatch", Error, found+": signatures fail to verify", "publish the signing key's record", want, "RFC 6376 §3.6.1, §6.1.2")
		return st
	}
	if rec.hashes != nil && !slices.Contains(rec.hashes, "sha256") {
		add("dkim.restricted", Error, "h="+strings.Join(rec.hashes, ":")+" does not allow sha256, which every signature uses", "drop the h= tag", want, "RFC 6376 §3.6.1; RFC 8301 §3.1")
		return st
	}
	if rec.services != nil && !slices.Contains(rec.services, "*") && !slices.Contains(rec.services, "email") {
		add("dkim.restricted", Error, "s="+strings.Join(rec.services, ":")+" does not allow email", "drop the s= tag", want, "RFC 6376 §3.6.1")
		return st
	}
	st.pass = true
	if slices.Contains(rec.flags, "y") {
		add("dkim.testing", Warning, "t=y: the domain is testing DKIM, and receivers may treat its mail as unsigned", "drop the y flag from t=", want, "RFC 6376 §3.6.1")
	}
	add("dkim.ok", OK, "k="+rec.keyType+", matches the signing key", "", nil, "RFC 6376")
	return st
}

// dkimRecord is a parsed DKIM key record (RFC 6376 §3.6.1).
type dkimRecord struct {
	keyType  string   // k=, "rsa" by default
	key      []byte   // p=, decoded; empty when revoked
	hashes   []string // h=, nil when absent (every hash)
	services []string // s=, nil when absent (every service)
	flags    []string // t=
}

// parseDKIMRecord parses a DKIM key record.
func parseDKIMRecord(txt string) (*dkimRecord, error) {
	tl, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tl.get("v"); ok {
		if tl.order[0] != "v" {
			return nil, errors.New("v= must be the first tag")
		}
		if v != "DKIM1" {
			return nil, fmt.Errorf("v=%s is not DKIM1", v)
		}
	}
	rec := &dkimRecord{keyType: "rsa"}
	if k, ok := tl.get("k"); ok {
		rec.keyType = strings.ToLower(k)
	}
	if rec.keyType != "rsa" && rec.keyType != "ed25519" {
		return nil, fmt.Errorf("unknown key type k=%s", rec.keyType)
	}
	p, ok := tl.get("p")
	if !ok {
		return nil, errors.New("no p= tag")
	}
	p = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p)
	if rec.key, err = base64.StdEncoding.DecodeString(p); err != nil {
		return nil, fmt.Errorf("p= is not base64: %w", err)
	}
	rec.hashes = colonList(tl, "h")
	rec.services = colonList(tl, "s")
	rec.flags = colonList(tl, "t")
	return rec, nil
}

// colonList splits a colon-separated tag value, lower-cased; nil when the
// tag is absent.
func colonList(tl *tagList, name string) []string {
	v, ok := tl.get(name)
	if !ok {
		return nil
	}
	out := []string{}
	for s := range strings.SplitSeq(v, ":") {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// keyMatches reports whether rec publishes pub: for RSA the DER
// SubjectPublicKeyInfo (or a bare PKCS #1 RSAPublicKey, which verifiers
// accept too), for Ed25519 the 32 raw bytes (RFC 8463 §4). Otherwise it
// says what the record publishes.
func keyMatches(pub any, rec *dkimRecord) (bool, string) {
	published := describeKey(rec)
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if rec.keyType == "ed25519" && bytes.Equal(rec.key, p) {
			return true, ""
		}
		return false, "the record publishes " + published + ", not the Ed25519 signing key"
	case *rsa.PublicKey:
		if rec.keyType == "rsa" {
			if spki, err := x509.MarshalPKIXPublicKey(p); err == nil && bytes.Equal(rec.key, spki) {
				return true, ""
			}
			if bytes.Equal(rec.key, x509.MarshalPKCS1PublicKey(p)) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("the record publishes %s, not the RSA signing key (%d bits)", published, p.N.BitLen())
	}
	return false, "unsupported signing key"
}

// describeKey says what key a record holds: "an RSA key of 2048 bits",
// "an Ed25519 key", "k=rsa data that is not an RSA key".
func describeKey(rec *dkimRecord) string {
	switch rec.keyType {
	case "ed25519":
		if len(rec.key) == ed25519.PublicKeySize {
			return "an Ed25519 key"
		}
		return fmt.Sprintf("k=ed25519 data of %d bytes, not an Ed25519 key", len(rec.key))
	default:
		if pub, err := x509.ParsePKIXPublicKey(rec.key); err == nil {
			if p, ok := pub.(*rsa.PublicKey); ok {
				return fmt.Sprintf("an RSA key of %d bits", p.N.BitLen())
			}
			return fmt.Sprintf("k=rsa with a %T key", pub)
		}
		if p, err := x509.ParsePKCS1PublicKey(rec.key); err == nil {
			return fmt.Sprintf("an RSA key of %d bits", p.N.BitLen())
		}
		return "k=rsa data that is not an RSA key"
	}
}

// clip shortens a record for a message.
func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
