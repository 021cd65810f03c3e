// Command relay measures mxrelay's bulk sending as a user's program would
// see it, against Postfix's smtp-source and github.com/wneessen/go-mail,
// over loopback, into Postfix's smtp-sink (a server that offers PIPELINING
// but not CHUNKING and throws every message away). It prints one table,
// with the ratios and whether the goals of issue 18 are met.
//
// Every contender is a process of its own, started fresh for each run:
// this program re-executes itself with -child for the mxrelay and go-mail
// contenders (a small program each, as a user's would be) and runs
// smtp-source as it is. While a contender runs, nothing else of the
// benchmark is alive but a fresh smtp-sink (and, in the 20 ms rows, the
// delay proxy, a process of its own too); this process only waits. Every
// run is made -rounds times, each round running the contenders in turn,
// starting one further each round, and the table gives the median and the
// spread (min–max) of the rounds. A ratio is the median of the per-round
// ratios of the two rows it compares.
//
// The rows, for messages of about 5 KB and of 60 KB, each unsigned and
// with one recipient unless the row says otherwise:
//
//   - smtp-source -d -s 20 -m N -l SIZE: 20 sessions, each reused.
//   - mxrelay Send, defaults: a relay.Client with default settings (its
//     connection cap per MX host, DefaultMaxConnections, included) and 20
//     goroutines calling Send, each message composed with package mime.
//     Goal: ≥ 1.0× smtp-source's messages per second, and sender CPU per
//     message at or below smtp-source's.
//   - mxrelay Send, tuned: the same with twice the connections per MX
//     host and ten times the messages per connection.
//   - mxrelay SendRaw: one message written beforehand, as smtp-source does.
//   - go-mail: 20 goroutines, each with one go-mail Client that dials once
//     and sends all its messages over that connection (its defaults: NOOP
//     before and RSET after each message).
//   - the same two at a 20 ms round trip, through a proxy that delays each
//     direction by 10 ms. Goal (issue 7): Send ≥ 3× go-mail.
//   - Enqueue+boltstore+Run: Client.Enqueue into queue/boltstore from 20
//     goroutines while Client.Run delivers, until the last delivery. Goal:
//     ≥ 0.5× Send.
//   - Send with an Ed25519 and with an RSA-2048 DKIM signer. Goals: Ed25519
//     ≥ 0.8× unsigned Send at 5 KB and ≥ 0.85× at 60 KB; RSA-2048 within
//     10% of the raw rsa.SignPKCS1v15 rate of these cores, which a row of
//     its own measures (and the raw ed25519.Sign rate, for reference).
//
// With -postfix (as root, Postfix installed) a last table compares the
// durable path with a private Postfix that queues on disk and relays to
// the sink (relayhost), fed by smtp-source: 3,000 messages of 5 KB from 20
// sessions, timed until the sink has counted them all.
//
// Besides wall time (from the contender's start to its exit, as a user
// would time the program) the table gives the CPU time per message of the
// sender (the contender process: user and system) and of smtp-sink, which
// is single-threaded: on a two-core machine the two compete, so CPU per
// message decides the larger sizes. Every run checks that smtp-sink
// counted every message sent.
//
// Run it from the bench module (smtp-sink and smtp-source come with
// Debian's postfix package; as root smtp-sink runs as nobody):
//
//	cd bench && go run ./relay [-n 10000] [-n-rtt 1000] [-rounds 5] [-quick] [-sizes 5KB] [-postfix] [-only send,source] [-cpuprofile dir]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
)

// config is what the flags set.
type config struct {
	n, nRTT int
	rounds  int
	sizes   string // comma-separated size names, "" → all
	only    string // comma-separated row keys, "" → all
	postfix bool
	profDir string // write a CPU profile of every contender run here
}

// wants reports whether the size named name is to be run.
func (c config) wants(name string) bool { return listed(c.sizes, name) }

// runs reports whether the row with key k is to be run.
func (c config) runs(k string) bool { return listed(c.only, k) }

// listed reports whether name is in the comma-separated list (case and
// spaces ignored); an empty list holds everything.
func listed(list, name string) bool {
	if list == "" {
		return true
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	for _, s := range strings.Split(list, ",") {
		if norm(s) == norm(name) {
			return true
		}
	}
	return false
}

func main() {
	var cfg config
	quick := flag.Bool("quick", false, "divide -n by five and -n-rtt by two, and make 3 rounds")
	flag.IntVar(&cfg.n, "n", 10000, "messages per direct run (per size)")
	flag.IntVar(&cfg.nRTT, "n-rtt", 1000, "messages per run at 20 ms round-trip time (per size)")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of every run")
	flag.StringVar(&cfg.sizes, "sizes", "", "sizes to run, comma-separated: 5KB,60KB (default all)")
	flag.StringVar(&cfg.only, "only", "", "rows to run, comma-separated keys (source, send, send-tuned, sendraw, gomail, gomail-rtt, send-rtt, durable, durable-rtt, signed-ed25519, signed-rsa, raw-rsa, raw-ed25519); default all")
	flag.BoolVar(&cfg.postfix, "postfix", false, "also compare the durable path with a private Postfix queueing on disk (needs root)")
	flag.StringVar(&cfg.profDir, "cpuprofile", "", "write a CPU profile of every mxrelay and go-mail run into this directory")
	child := flag.String("child", "", "internal: run one contender, described in JSON")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench/relay: ")
	if *child != "" {
		if err := childMain(*child); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *quick {
		cfg.n, cfg.nRTT, cfg.rounds = max(cfg.n/5, senders), max(cfg.nRTT/2, senders), 3
	}
	cfg.rounds = max(cfg.rounds, 1)
	if cfg.profDir != "" {
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/relay:", err)
		os.Exit(1)
	}
}
