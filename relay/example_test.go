package relay_test

import (
	"context"
	"fmt"
	"log"
	"net/mail"
	"net/netip"
	"strings"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// A Client sends straight to the recipients' MX hosts and reports every
// recipient. Here relaytest stands in for the internet.
func ExampleClient_Send() {
	srv, err := relaytest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.AddHost("mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			if strings.HasPrefix(rcpt, "nobody@") {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
			}
			return nil
		},
	})
	srv.AddDomain("example.com", "mx.example.com")

	c := srv.Client() // in production: &relay.Client{Hostname: "mail.example.org", Signer: ...}
	res, err := c.Send(context.Background(), &mime.Message{
		From:    mail.Address{Name: "Shop", Address: "shop@example.org"},
		To:      []mail.Address{{Address: "ann@example.com"}, {Address: "nobody@example.com"}},
		Subject: "Your order",
		Text:    "It has shipped.",
	})
	for _, r := range res.Recipients {
		fmt.Println(r.Recipient, r.Status, r.Code, r.Enhanced, r.MX)
	}
	fmt.Println("permanent:", relay.IsPermanent(err))
	// Output:
	// ann@example.com delivered 250 2.0.0 mx.example.com
	// nobody@example.com bounced 550 5.1.1 mx.example.com
	// permanent: true
}

// SendRaw sends bytes that were written elsewhere, with an explicit
// envelope.
func ExampleClient_SendRaw() {
	srv, err := relaytest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.AddHost("mx.example.com", relaytest.HostConfig{})
	srv.AddDomain("example.com", "mx.example.com")

	msg := "From: alerts@example.org\r\nTo: ops@example.com\r\nSubject: disk full\r\n\r\n/var is at 99%.\r\n"
	res, err := srv.Client().SendRaw(context.Background(), "bounces@example.org", []string{"ops@example.com"}, strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Recipients[0].Status)
	fmt.Println(srv.Messages()[0].From)
	// Output:
	// delivered
	// bounces@example.org
}

// The package-level Send uses DefaultClient, as http.Get uses
// http.DefaultClient.
func ExampleSend() {
	srv, err := relaytest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.AddHost("mx.example.com", relaytest.HostConfig{})
	srv.AddDomain("example.com", "mx.example.com")
	srv.Configure(relay.DefaultClient) // only for this offline example

	res, err := relay.Send(context.Background(), &mime.Message{
		From:    mail.Address{Address: "app@example.org"},
		To:      []mail.Address{{Address: "user@example.com"}},
		Subject: "Welcome",
		HTML:    "<h1>Welcome!</h1>",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Recipients[0].Recipient, res.Recipients[0].Status)
	// Output:
	// user@example.com delivered
}

// Plan shows the route a message would take, without sending it: here the
// MX host, its address, and the TLS policy with its reason.
func ExampleClient_Plan() {
	srv, err := relaytest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	h, _ := srv.AddHost("mx.example.com", relaytest.HostConfig{})
	srv.AddDomain("example.com", "mx.example.com")
	srv.SetSTSPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n")

	p, err := srv.Client().Plan(context.Background(), &mime.Message{
		From:    mail.Address{Address: "shop@example.org"},
		To:      []mail.Address{{Address: "ann@example.com"}},
		Subject: "Your order",
		Text:    "It has shipped.",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range p.Domains {
		fmt.Println(d.Domain, "via", d.Transport)
		for _, host := range d.Hosts {
			fmt.Println(" ", host.Host, host.Addrs[0].Addr == netip.MustParseAddr(h.IP), host.TLS.Policy, host.TLS.Required)
		}
	}
	fmt.Println("connections:", h.Connections())
	// Output:
	// example.com via direct
	//   mx.example.com true mta-sts true
	// connections: 0
}
