package mx_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func ExampleResolver_LookupMX() {
	srv := mxtest.NewServer(mxtest.Zone{
		"example.com": {TTL: 300, MX: []mx.MX{
			{Host: "backup.example.com", Pref: 20},
			{Host: "mx.example.com", Pref: 10},
		}},
		"www.example.org": {TTL: 300, A: []string{"192.0.2.80"}},
		"null.example":    {TTL: 300, MX: []mx.MX{{Host: ".", Pref: 0}}},
	})
	defer srv.Close()
	r := srv.Resolver() // in production: &mx.Resolver{} or mx.DefaultResolver
	ctx := context.Background()

	mxs, _ := r.LookupMX(ctx, "example.com")
	for _, m := range mxs {
		fmt.Println(m.Pref, m.Host)
	}
	mxs, _ = r.LookupMX(ctx, "www.example.org") // implicit MX
	fmt.Println(mxs)

	_, err := r.LookupMX(ctx, "null.example")
	fmt.Println(errors.Is(err, mx.ErrNullMX), mx.IsPermanent(err))
	_, err = r.LookupMX(ctx, "no-such-domain.example")
	fmt.Println(errors.Is(err, mx.ErrNoDomain), mx.IsPermanent(err))
	// Output:
	// 10 mx.example.com
	// 20 backup.example.com
	// [{www.example.org 0}]
	// true true
	// true true
}

func ExampleIsPermanent() {
	srv := mxtest.NewServer(mxtest.Zone{
		"example.com": {MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
	})
	defer srv.Close()
	srv.SetFaults(mxtest.Faults{ServFail: true})

	_, err := srv.Resolver().LookupMX(context.Background(), "example.com")
	fmt.Println(mx.IsPermanent(err)) // false: defer the message, try again later
	// Output: false
}

func ExampleResolver_LookupTLSA() {
	srv := mxtest.NewServer(mxtest.Zone{
		"_25._tcp.mx.example.com": {
			TTL:    300,
			TLSA:   []mx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0x12, 0x34}}},
			Faults: mxtest.Faults{AD: true}, // as a validating resolver would
		},
	})
	defer srv.Close()

	recs, authenticated, err := srv.Resolver().LookupTLSA(context.Background(), "mx.example.com", 25)
	fmt.Println(recs, authenticated, err)
	// Output: [3 1 1 1234] true <nil>
}

func ExampleResolver_LookupTXT() {
	srv := mxtest.NewServer(mxtest.Zone{
		"example.com":        {TTL: 300, TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}, A: []string{"192.0.2.1"}},
		"_dmarc.example.com": {TTL: 300, TXT: []string{"v=DMARC1; p=reject"}},
		"mail.example.com":   {TTL: 300, A: []string{"192.0.2.25"}},
	})
	defer srv.Close()
	r := srv.Resolver()
	ctx := context.Background()

	txts, err := r.LookupTXT(ctx, "_dmarc.example.com")
	fmt.Println(txts, err)
	txts, err = r.LookupTXT(ctx, "example.com")
	fmt.Println(txts, err)

	// No record: a permanent error, ErrNoDomain or ErrNoRecords. An SPF
	// evaluator reads it as "none"; any other error is "temperror".
	_, err = r.LookupTXT(ctx, "_dmarc.example.org") // NXDOMAIN
	fmt.Println(errors.Is(err, mx.ErrNoDomain), mx.IsPermanent(err))
	_, err = r.LookupTXT(ctx, "mail.example.com") // NODATA: the name exists, without TXT
	fmt.Println(errors.Is(err, mx.ErrNoRecords), mx.IsPermanent(err))
	// Output:
	// [v=DMARC1; p=reject] <nil>
	// [v=spf1 ip4:192.0.2.0/24 -all] <nil>
	// true true
	// true true
}

func ExampleParsePolicy() {
	p, err := mx.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Mode, p.MaxAge)
	for _, host := range []string{"mail.example.com", "mx1.example.net", "a.b.example.net", "evil.example"} {
		fmt.Println(host, p.Match(host))
	}
	// Output:
	// enforce 168h0m0s
	// mail.example.com true
	// mx1.example.net true
	// a.b.example.net false
	// evil.example false
}
