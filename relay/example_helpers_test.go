package relay_test

import "net/mail"

func addr(s string) mail.Address {
	a, err := mail.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return *a
}
