package main

import (
	"fmt"
	"io"
	"net/mail"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/mxrelay/mxrelay/mime"
)

const (
	sender    = "bench@sender.example"
	recipient = "rcpt@example.com"
	subject   = "Your weekly digest"
)

// bodyFor returns a plain ASCII text body that makes mxrelay's message
// about size octets: lines of 78 characters and CRLF, the longest that
// package mime writes as 7bit, close to smtp-source's payload (its -l text
// comes in lines of 79 characters and a newline, sent as CRLF), so that
// the sink reads about as many lines of either; no '=' so that
// quoted-printable leaves it alone.
func bodyFor(size int) string {
	probe := mxMessage("x\r\n")
	data, err := probe.Bytes()
	if err != nil {
		panic(err)
	}
	want := size - len(data) + 3
	var b strings.Builder
	for i := 0; b.Len() < want; i++ {
		line := fmt.Sprintf("%05d The quick brown fox jumps over the lazy dog, again and again. ", i)
		line = (line + strings.Repeat("x", 78))[:78] + "\r\n"
		b.WriteString(line)
	}
	s := b.String()
	if len(s) > want && want > 0 {
		s = s[:want-2] + "\r\n"
	}
	return s
}

// mxMessage is the message mxrelay sends: one recipient, text only.
func mxMessage(text string) *mime.Message {
	return &mime.Message{
		From:    mail.Address{Name: "Bench", Address: sender},
		To:      []mail.Address{{Address: recipient}},
		Subject: subject,
		Text:    text,
	}
}

// goMailMessage is the same message built with go-mail.
func goMailMessage(text string) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.FromFormat("Bench", sender); err != nil {
		return nil, err
	}
	if err := m.To(recipient); err != nil {
		return nil, err
	}
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, text)
	return m, nil
}

// sizes reports the octets of one message as each library writes it.
func sizes(text string) (mx, gm int, err error) {
	data, err := mxMessage(text).Bytes()
	if err != nil {
		return 0, 0, err
	}
	m, err := goMailMessage(text)
	if err != nil {
		return 0, 0, err
	}
	n, err := m.WriteTo(io.Discard)
	return len(data), int(n), err
}
