// Package relaytest runs an offline destination for mail, for tests, in the
// manner of net/http/httptest: a DNS server (mx/mxtest) and scripted MX
// hosts built on go-smtp's server, each on its own loopback address
// (127.0.0.2, 127.0.0.3, ...) and all on one port, so that a relay.Client
// whose Port is that port reaches every host by its MX records.
//
// Each host can be scripted: reply codes per command or recipient, 421 or
// hostile greetings, dropped connections after the data, slow replies, no
// STARTTLS, TLS with a certificate from the harness's test CA, self-signed
// or for the wrong name, PIPELINING, CHUNKING, SMTPUTF8 and 8BITMIME on or
// off, SIZE and RCPTMAX limits. Every message received is recorded with its
// envelope, TLS state and how it was sent. MTA-STS policies are served over
// HTTPS (SetSTSPolicy) and TLSA records published through the DNS server.
//
//	srv, err := relaytest.NewServer()
//	...
//	defer srv.Close()
//	srv.AddHost("mx.example.com", relaytest.HostConfig{})
//	srv.AddDomain("example.com", "mx.example.com")
//	res, err := srv.Client().Send(ctx, msg)
//	got := srv.Messages()
package relaytest
