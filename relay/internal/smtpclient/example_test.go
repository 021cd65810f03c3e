package smtpclient_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

func ExampleDataWriter() {
	var b strings.Builder
	w := smtpclient.NewDataWriter(&b, true)
	// A bare LF, a line with a lone dot and no final line end: the output
	// has CRLF lines, a stuffed dot and one end-of-data.
	io.WriteString(w, "Subject: hi\n\nline\n.\nlast")
	w.Close()
	fmt.Printf("%q\n", b.String())
	// Output: "Subject: hi\r\n\r\nline\r\n..\r\nlast\r\n.\r\n"
}

// exampleServer is a loopback go-smtp server that refuses one mailbox.
func exampleServer() (addr string, stop func()) {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return session{}, nil }))
	s.Domain = "mx.example.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go s.Serve(ln)
	return ln.Addr().String(), func() { s.Close() }
}

type session struct{}

func (session) Reset()                               {}
func (session) Logout() error                        { return nil }
func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}
func (session) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }

func ExampleClient_Send() {
	addr, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := smtpclient.Dial(ctx, "tcp", addr, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Hello(ctx, "sender.example.test"); err != nil {
		fmt.Println(err)
		return
	}
	// With a real MX: c.StartTLS(ctx, &tls.Config{ServerName: mxHost}) here.

	msg := []byte("From: a@example.test\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nHi.\r\n")
	res, err := c.Send(ctx, &smtpclient.Envelope{
		From: "a@example.test",
		To:   []string{"b@example.org", "nobody@example.org"},
	}, msg)
	if err != nil {
		fmt.Println("transaction failed:", err)
	}
	fmt.Println("pipelined:", res.Pipelined, "chunked:", res.Chunked)
	for _, r := range res.Rcpts {
		switch {
		case r.Err == nil:
			fmt.Println(r.Addr, "delivered:", res.Final.Code)
		case smtpclient.IsPermanent(r.Err):
			fmt.Println(r.Addr, "bounced:", r.Err)
		default:
			fmt.Println(r.Addr, "deferred:", r.Err)
		}
	}
	if err := c.Quit(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	// Output:
	// pipelined: true chunked: true
	// b@example.org delivered: 250
	// nobody@example.org bounced: smtpclient: RCPT TO: 550 5.1.1 no such user
}
