package dkim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mxrelay/mxrelay/dkim"
)

// Dual-sign a message with Ed25519 and RSA, then check both signatures
// against the records that would be published, before publishing them.
func ExampleNewSigner() {
	edKey, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		log.Fatal(err)
	}
	rsaKey, err := dkim.GenerateKey(dkim.RSA)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dkim.NewSigner(
		dkim.Config{Domain: "example.com", Selector: "2026e", Key: edKey},
		dkim.Config{Domain: "example.com", Selector: "2026r", Key: rsaKey},
	)
	if err != nil {
		log.Fatal(err)
	}

	msg := "From: Alice <alice@example.com>\r\n" +
		"To: Bob <bob@example.net>\r\n" +
		"Subject: Hello\r\n" +
		"\r\n" +
		"Hi Bob!\r\n"
	var signed bytes.Buffer
	if err := signer.Sign(&signed, strings.NewReader(msg)); err != nil {
		log.Fatal(err)
	}

	// The TXT records to publish, served here by a lookup function.
	records := map[string]string{}
	for sel, key := range map[string]any{"2026e": edKey.Public(), "2026r": rsaKey.Public()} {
		records[dkim.RecordName("example.com", sel)], _ = dkim.TXTRecord(key)
	}
	lookup := func(_ context.Context, name string) ([]string, error) {
		return []string{records[name]}, nil
	}
	results, err := dkim.Verify(context.Background(), &signed, &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Println(r.Algorithm, r.Selector, r.Domain, r.Err)
	}
	// Output:
	// ed25519-sha256 2026e example.com <nil>
	// rsa-sha256 2026r example.com <nil>
}

// Sign a message read from standard input and write it, signed, to
// standard output.
func ExampleSigner_Sign() {
	pemBytes, err := os.ReadFile("testdata/ed25519.pem") // your private key file
	if err != nil {
		log.Fatal(err)
	}
	key, err := dkim.ParsePrivateKey(pemBytes)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.com", Selector: "mail", Key: key})
	if err != nil {
		log.Fatal(err)
	}
	if err := signer.Sign(os.Stdout, os.Stdin); err != nil {
		log.Fatal(err)
	}
}

// The record to publish for an Ed25519 key.
func ExampleTXTRecord() {
	seed := bytes.Repeat([]byte{42}, ed25519.SeedSize) // use dkim.GenerateKey
	key := ed25519.NewKeyFromSeed(seed)
	record, err := dkim.TXTRecord(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dkim.RecordName("example.com", "2026e"))
	fmt.Println(record)
	// Output:
	// 2026e._domainkey.example.com
	// v=DKIM1; k=ed25519; p=GX9rI+FshTLGq8g4+s1ep4m+DHaykgM0A5v6iz02jWE=
}

// A zone-file line for an RSA key, whose record is too long for one
// character-string.
func ExampleZoneRecord() {
	pemBytes, err := os.ReadFile("testdata/rsa2048-pkcs1.pem")
	if err != nil {
		log.Fatal(err)
	}
	key, err := dkim.ParsePrivateKey(pemBytes)
	if err != nil {
		log.Fatal(err)
	}
	line, err := dkim.ZoneRecord("example.com", "2026r", key.Public())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(line[:61] + "...")
	fmt.Println(strings.Count(line, `"`)/2, "strings")
	// Output:
	// 2026r._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MII...
	// 2 strings
}

func ExampleSplitTXT() {
	record := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 380)
	for _, s := range dkim.SplitTXT(record) {
		fmt.Println(len(s))
	}
	// Output:
	// 255
	// 143
}
