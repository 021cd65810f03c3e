// Command relay measures mxrelay's bulk sending (issue 7, "Benchmarks")
// against Postfix's smtp-source and github.com/wneessen/go-mail, in one
// process and one run, over loopback, into Postfix's smtp-sink (a server
// that offers PIPELINING but not CHUNKING and throws every message away).
// Every message is unsigned unless the row says otherwise and has one
// recipient; each run is made with messages of about 5 KB and of 60 KB.
//
//  1. mxrelay's relay.Client (its connection pool, 20 goroutines calling
//     Send, Limits.MaxConnections 20, example.com's MX resolved through an
//     in-process DNS server to 127.0.0.1) against smtp-source -d -s 20 -m N
//     -l SIZE, which keeps 20 sessions open and sends N messages over them.
//     Goal: at least 0.9× smtp-source's messages per second. A second
//     row sends one message written beforehand with SendRaw, which is what
//     smtp-source does (it composes nothing); Send composes every message
//     with package mime.
//  2. mxrelay against go-mail v0.8.1 from 20 goroutines, each with one
//     go-mail Client that dials once and sends all its messages over that
//     connection (its defaults otherwise: NOOP before and RSET after each
//     message; only the port and TLSPolicy NoTLS are set, as smtp-sink has
//     no STARTTLS) — directly, and through a proxy in this program that
//     delays each direction by 10 ms (a 20 ms round trip; a new connection
//     reaches the sink 30 ms after the client connected, as a TCP
//     handshake would). Goal: at least 3× go-mail at 20 ms.
//  3. The durable path: Client.Enqueue into queue/boltstore (a temporary
//     file) from 20 goroutines while Client.Run (20 workers) delivers, timed
//     until the last delivery; against the in-memory Send path, directly
//     and at 20 ms. QueuePerDomain is left at its default, which follows
//     Limits.MaxConnections (20).
//  4. The signed path: Send with an Ed25519 and with an RSA-2048 DKIM
//     signer; against unsigned Send.
//
// Run it from the bench module (smtp-sink and smtp-source come with
// Debian's postfix package; as root smtp-sink runs as nobody):
//
//	cd bench && go run ./relay [-n 10000] [-n-rtt 1000] [-quick] [-rounds 2] [-cpuprofile dir]
//
// -n is the count of every direct run, -n-rtt that of the runs at 20 ms;
// -quick divides -n by five and -n-rtt by two (fewer messages per
// connection would make the 20 ms rows measure connection set-up); -sizes
// 5KB or 60KB runs one size only. With -rounds R every run is made R
// times, each round running every contender in turn, and the best round of
// each counts. -cpuprofile writes a CPU profile of each run of this process
// into dir. The example.com zone is served with a negative TTL, as a real
// zone's SOA gives, so the missing AAAA record is looked up once, not once
// per message.
//
// Besides wall time the table gives the CPU time per message of the sender
// (this process, including the delay proxy in the 20 ms rows, or
// smtp-source) and of smtp-sink, which is single-threaded: on a two-core
// machine the two compete, so CPU per message decides the larger sizes. At
// the end the program checks that smtp-sink counted every message sent.
package main

import (
	"github.com/mxrelay/mxrelay/bench/internal/sink"

	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// sizes of the messages, in octets.
var messageSizes = []struct {
	name string
	size int
}{{"5 KB", 5 << 10}, {"60 KB", 60 << 10}}

// rtt is the emulated round-trip time of the proxied runs.
const rtt = 20 * time.Millisecond

type config struct {
	n, nRTT int
	rounds  int
	profDir string
	sizes   string // comma-separated size names, "" → all
}

// wants reports whether the size named name is to be run.
func (c config) wants(name string) bool {
	if c.sizes == "" {
		return true
	}
	for _, s := range strings.Split(c.sizes, ",") {
		if strings.EqualFold(strings.ReplaceAll(s, " ", ""), strings.ReplaceAll(name, " ", "")) {
			return true
		}
	}
	return false
}

func main() {
	var cfg config
	quick := flag.Bool("quick", false, "divide -n by five and -n-rtt by two")
	flag.IntVar(&cfg.n, "n", 10000, "messages per direct run (per size)")
	flag.IntVar(&cfg.nRTT, "n-rtt", 1000, "messages per run at 20 ms round-trip time (per size)")
	flag.IntVar(&cfg.rounds, "rounds", 2, "rounds of every run; the best counts")
	flag.StringVar(&cfg.sizes, "sizes", "", "sizes to run, comma-separated: 5KB,60KB (default all)")
	flag.StringVar(&cfg.profDir, "cpuprofile", "", "write a CPU profile of each mxrelay run into this directory")
	flag.Parse()
	if *quick {
		cfg.n, cfg.nRTT = max(cfg.n/5, senders), max(cfg.nRTT/2, senders)
	}
	if cfg.rounds < 1 {
		cfg.rounds = 1
	}
	log.SetFlags(0)
	log.SetPrefix("bench/relay: ")
	if cfg.profDir != "" {
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

// measure is one timed run: wall time, and the CPU time used by the
// sender (this process, or smtp-source) and by smtp-sink meanwhile.
type measure struct {
	el, cli, sink time.Duration
}

// row is one line of the table.
type row struct {
	size, what string
	n          int
	m          measure
	vs         string  // what the ratio compares with
	ratio      float64 // 0: none
	goal       float64 // 0: none
	note       string
}

func (r row) rate() float64 { return float64(r.n) / r.m.el.Seconds() }

// bench holds what every run shares.
type bench struct {
	cfg   config
	ctx   context.Context
	sk    *sink.Sink
	dns   *mxtest.Server
	proxy *delayProxy
	sent  int // messages the sink should have received
}

// timed runs f once, under the CPU profiler when asked, and measures it.
func (b *bench) timed(name string, n int, f func() (time.Duration, error)) (measure, error) {
	cli0, sink0 := selfCPU(), procCPU(b.sk.PID())
	el, err := profile(b.cfg.profDir, name, f)
	m := measure{el: el, cli: selfCPU() - cli0, sink: procCPU(b.sk.PID()) - sink0}
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	b.sent += n
	return m, nil
}

// source runs smtp-source once and measures it.
func (b *bench) source(n, size int) (measure, error) {
	sink0 := procCPU(b.sk.PID())
	el, cpu, err := sink.RunSource(b.ctx, b.sk.Port, n, senders, sink.SourceLength(size))
	m := measure{el: el, cli: cpu, sink: procCPU(b.sk.PID()) - sink0}
	if err != nil {
		return m, err
	}
	b.sent += n
	return m, nil
}

// best keeps the faster of two measures.
func best(a, b measure) measure {
	if a.el == 0 || (b.el != 0 && b.el < a.el) {
		return b
	}
	return a
}

func run(cfg config) error {
	// Bounded: the whole program gives up after 20 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	sk, err := sink.Start()
	if err != nil {
		return err
	}
	defer sk.Stop()
	dns := newDNS()
	defer dns.Close()
	proxy, err := newDelayProxy(fmt.Sprintf("127.0.0.1:%d", sk.Port), rtt/2)
	if err != nil {
		return err
	}
	defer proxy.Close()
	ed, err := newSigner(dkim.Ed25519)
	if err != nil {
		return err
	}
	rsa, err := newSigner(dkim.RSA)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, ctx: ctx, sk: sk, dns: dns, proxy: proxy}

	fmt.Printf("mxrelay bulk sending, %d senders, one recipient per message, into smtp-sink on 127.0.0.1 (%s, %d CPUs)\n",
		senders, runtime.Version(), runtime.NumCPU())
	fmt.Printf("direct runs: %d messages each; 20 ms RTT runs: %d messages each; best of %d round(s)\n", cfg.n, cfg.nRTT, cfg.rounds)

	var rows []row
	for _, sz := range messageSizes {
		if !cfg.wants(sz.name) {
			continue
		}
		r, err := b.size(sz.name, sz.size, ed, rsa)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	fmt.Println()
	printTable(rows)
	sk.Stop()
	got := sk.Messages()
	fmt.Printf("\nsmtp-sink counted %d messages; the runs sent %d; DNS queries: %d\n", got, b.sent, dns.Queries())
	if got != b.sent {
		return fmt.Errorf("smtp-sink received %d messages, expected %d", got, b.sent)
	}
	return nil
}

// size makes every run with messages of about size octets.
func (b *bench) size(name string, size int, ed, rsa *dkim.Signer) ([]row, error) {
	cfg := b.cfg
	tag := strings.ReplaceAll(name, " ", "")
	text := bodyFor(size)
	mxSize, gmSize, err := sizes(text)
	if err != nil {
		return nil, err
	}
	fmt.Printf("%s: mxrelay message %d octets, go-mail %d, smtp-source -l %d (about %d on the wire)\n",
		name, mxSize, gmSize, sink.SourceLength(size), size)
	direct := func() *relay.Client { return newClient(b.dns, b.sk.Port) }

	// Every round runs each contender in turn, so that a busy moment of
	// the machine hurts all alike; the best round of each counts.
	type contender struct {
		row *row
		run func(round int) (measure, error)
	}
	plain := func(label, what string, n int, f func() (time.Duration, error)) contender {
		r := &row{size: name, what: what, n: n}
		return contender{r, func(round int) (measure, error) {
			return b.timed(fmt.Sprintf("%s-%s-%d", label, tag, round), n, f)
		}}
	}
	src := contender{&row{size: name, what: "smtp-source -d -s 20", n: cfg.n}, func(int) (measure, error) {
		return b.source(cfg.n, size)
	}}
	send := plain("send", "mxrelay Send (pool of 20)", cfg.n, func() (time.Duration, error) {
		return runSend(b.ctx, direct(), cfg.n, text)
	})
	raw := plain("sendraw", "mxrelay SendRaw, pre-written", cfg.n, func() (time.Duration, error) {
		return runSendRaw(b.ctx, direct(), cfg.n, text)
	})
	gm := plain("gomail", "go-mail (20 goroutines, reuse)", cfg.n, func() (time.Duration, error) {
		return runGoMail(b.ctx, b.sk.Port, cfg.n, text)
	})
	gmRTT := plain("gomail-rtt", "go-mail, 20 ms RTT", cfg.nRTT, func() (time.Duration, error) {
		return runGoMail(b.ctx, b.proxy.Port(), cfg.nRTT, text)
	})
	sendRTT := plain("send-rtt", "mxrelay Send, 20 ms RTT", cfg.nRTT, func() (time.Duration, error) {
		return runSend(b.ctx, newClient(b.dns, b.proxy.Port()), cfg.nRTT, text)
	})
	var enq [2]time.Duration
	durable := func(i, port, n int, label, what string) contender {
		return plain(label, what, n, func() (time.Duration, error) {
			r, err := runDurable(b.ctx, b.dns, port, n, text)
			if enq[i] == 0 || r.enqueue < enq[i] {
				enq[i] = r.enqueue
			}
			return r.total, err
		})
	}
	dur := durable(0, b.sk.Port, cfg.n, "durable", "Enqueue+boltstore+Run")
	durRTT := durable(1, b.proxy.Port(), cfg.nRTT, "durable-rtt", "Enqueue+boltstore+Run, 20 ms RTT")
	signedRun := func(label string, s *dkim.Signer) contender {
		return plain("signed-"+label, "mxrelay Send, DKIM "+label, cfg.n, func() (time.Duration, error) {
			c := direct()
			c.Signer = s
			return runSend(b.ctx, c, cfg.n, text)
		})
	}
	edRun, rsaRun := signedRun("Ed25519", ed), signedRun("RSA-2048", rsa)

	all := []contender{src, send, raw, gm, gmRTT, sendRTT, dur, durRTT, edRun, rsaRun}
	for round := range cfg.rounds {
		for _, c := range all {
			m, err := c.run(round)
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", c.row.what, name, err)
			}
			c.row.m = best(c.row.m, m)
		}
	}

	ratio := func(r row, vs string, peer *row, goal float64) row {
		r.vs, r.goal, r.ratio = vs, goal, r.rate()/peer.rate()
		return r
	}
	for i, d := range []contender{dur, durRTT} {
		d.row.note = fmt.Sprintf("enqueue alone %.0f/s", float64(d.row.n)/enq[i].Seconds())
	}
	raw.row.note = "transport only, like smtp-source"
	return []row{
		*src.row,
		ratio(*send.row, "smtp-source", src.row, 0.9),
		ratio(*raw.row, "smtp-source", src.row, 0.9),
		*gm.row,
		ratio(*send.row, "go-mail", gm.row, 0),
		*gmRTT.row,
		ratio(*sendRTT.row, "go-mail 20 ms", gmRTT.row, 3),
		ratio(*dur.row, "Send", send.row, 0),
		ratio(*durRTT.row, "Send 20 ms", sendRTT.row, 0),
		ratio(*edRun.row, "Send", send.row, 0),
		ratio(*rsaRun.row, "Send", send.row, 0),
	}, nil
}

// profile runs f, under the CPU profiler when dir is set.
func profile(dir, name string, f func() (time.Duration, error)) (time.Duration, error) {
	if dir == "" {
		return f()
	}
	out, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return 0, err
	}
	defer pprof.StopCPUProfile()
	return f()
}

func printTable(rows []row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\trun\tmessages\tseconds\tmsgs/s\tratio\tvs\tgoal\tsender CPU µs/msg\tsink CPU µs/msg\tnote\t")
	for _, r := range rows {
		ratio, goal := "", ""
		if r.vs != "" {
			ratio = fmt.Sprintf("%.2fx", r.ratio)
		}
		if r.goal > 0 {
			verdict := "met"
			if r.ratio < r.goal {
				verdict = "MISSED"
			}
			goal = fmt.Sprintf(">= %.1fx %s", r.goal, verdict)
		}
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.n) }
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t\n",
			r.size, r.what, r.n, r.m.el.Seconds(), r.rate(), ratio, r.vs, goal, per(r.m.cli), per(r.m.sink), r.note)
	}
	tw.Flush()
}
