package relay_test

import (
	"io"
	"log/slog"
	"net/mail"
)

func addr(s string) mail.Address {
	a, err := mail.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return *a
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
