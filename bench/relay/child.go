package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// childArgs is what the coordinator passes a contender process.
type childArgs struct {
	Kind string `json:"kind"` // one of the kinds of runChild
	Port int    `json:"port"` // the sink's port, or the delay proxy's
	N    int    `json:"n"`    // messages (or key operations) to make
	Size int    `json:"size"` // message size in octets
	Dir  string `json:"dir"`  // a directory of the coordinator's for files
	// Profile, if set, is the file to write a CPU profile of the run to,
	// and Profile+".allocs" the allocations' profile.
	Profile string `json:"profile,omitempty"`
}

// childResult is what a contender process prints, as one JSON line, on
// its standard output.
type childResult struct {
	// Inner is the time from the first message (or operation) to the last,
	// measured inside the process: without its start-up.
	Inner time.Duration `json:"inner_ns"`
	// Enqueue is, for the durable kinds, the time until the last Enqueue
	// returned.
	Enqueue time.Duration `json:"enqueue_ns,omitempty"`
	Note    string        `json:"note,omitempty"`
}

// childMain runs one contender in this process, which the coordinator
// started for it alone, and prints its result.
func childMain(spec string) error {
	var a childArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		return fmt.Errorf("bad -child argument: %w", err)
	}
	if a.Kind == kindProxy {
		return proxyMain(a.Port)
	}
	// Bounded: a contender that hangs ends after 10 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if a.Profile != "" {
		f, err := os.Create(a.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		// And the allocations, beside it.
		defer func() {
			if f, err := os.Create(a.Profile + ".allocs"); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	r, err := runChild(ctx, a)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Kind, err)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// The kinds of contender processes.
const (
	kindSend      = "send"       // relay.Client with default settings, Send
	kindSendTuned = "send-tuned" // the same with Limits tuned for one sink
	kindSendRaw   = "sendraw"    // SendRaw of one message written beforehand
	kindGoMail    = "gomail"     // go-mail, one connection per goroutine
	kindDurable   = "durable"    // Enqueue into boltstore while Run delivers
	kindEd25519   = "signed-ed25519"
	kindRSA       = "signed-rsa"
	kindRawRSA    = "raw-rsa"     // rsa.SignPKCS1v15 of SHA-256 digests
	kindRawEd     = "raw-ed25519" // ed25519.Sign of SHA-256 digests
	kindProxy     = "proxy"       // the 20 ms delay proxy, not a sender
)

// runChild runs contender a.Kind.
func runChild(ctx context.Context, a childArgs) (childResult, error) {
	var r childResult
	switch a.Kind {
	case kindRawRSA, kindRawEd:
		el, err := rawSignRate(a.Kind, a.N)
		r.Inner = el
		return r, err
	}
	dns := newDNS()
	defer dns.Close()
	text := bodyFor(a.Size)
	var err error
	switch a.Kind {
	case kindSend:
		r.Inner, err = runSend(ctx, defaultClient(dns, a.Port), a.N, text)
	case kindSendTuned:
		r.Inner, err = runSend(ctx, tunedClient(dns, a.Port), a.N, text)
	case kindSendRaw:
		r.Inner, err = runSendRaw(ctx, defaultClient(dns, a.Port), a.N, text)
	case kindGoMail:
		r.Inner, err = runGoMail(ctx, a.Port, a.N, text)
	case kindDurable:
		var d durableResult
		d, err = runDurable(ctx, defaultClient(dns, a.Port), a.Dir, a.N, text)
		r.Inner, r.Enqueue = d.total, d.enqueue
	case kindEd25519, kindRSA:
		t := dkim.Ed25519
		if a.Kind == kindRSA {
			t = dkim.RSA
		}
		c := defaultClient(dns, a.Port)
		if c.Signer, err = newSigner(t); err != nil {
			return r, err
		}
		r.Inner, err = runSend(ctx, c, a.N, text)
	default:
		return r, fmt.Errorf("unknown kind %q", a.Kind)
	}
	if q := dns.Queries(); q > 10 {
		r.Note = fmt.Sprintf("%d DNS queries", q)
	}
	return r, err
}

// defaultClient is a relay.Client with default settings, but for what
// sending to a sink on loopback needs: the in-process DNS, the sink's port
// and leave to connect to a private address. MTA-STS and DANE stay on:
// their records are absent from the zone, and the answers are cached.
func defaultClient(dns *mxtest.Server, port int) *relay.Client {
	return &relay.Client{Transport: &relay.Direct{
		Hostname:          "relay.sender.example",
		Resolver:          dns.Resolver(),
		Port:              port,
		AllowPrivateAddrs: true,
	}}
}

// The limits of the tuned row: twice the default connection cap, and ten
// times the messages per connection, so fewer sessions are opened.
const (
	tunedMaxConnections = 2 * relay.DefaultMaxConnections
	tunedPerConnection  = 10 * relay.DefaultMaxMessagesPerConnection
)

// tunedClient is defaultClient with the tuned limits per MX host.
func tunedClient(dns *mxtest.Server, port int) *relay.Client {
	c := defaultClient(dns, port)
	c.Transport.(*relay.Direct).Limits = relay.DestinationLimits{
		MaxConnections: tunedMaxConnections, MaxMessagesPerConnection: tunedPerConnection}
	return c
}

// rawSignRate makes n signatures of SHA-256 digests with a fresh RSA-2048
// or Ed25519 key from GOMAXPROCS goroutines: the rate no signing sender
// can pass on these cores.
func rawSignRate(kind string, n int) (time.Duration, error) {
	var sign func(digest []byte) error
	if kind == kindRawRSA {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return 0, err
		}
		sign = func(d []byte) error { _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d); return err }
	} else {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return 0, err
		}
		sign = func(d []byte) error { _ = ed25519.Sign(key, d); return nil }
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var msg [8]byte
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				msg[0], msg[1], msg[2] = byte(i), byte(i>>8), byte(w)
				d := sha256.Sum256(msg[:])
				if err := sign(d[:]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		return el, err
	}
	return el, nil
}
