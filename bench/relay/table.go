package main

import (
	"fmt"
	"github.com/mxrelay/mxrelay/bench/internal/goals"
	"os"
	"text/tabwriter"
)

// printRows prints one line per contender and size: medians and spreads.
func printRows(tables []sizeTable) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\trun\tcount\tmsgs/s (median)\tspread (min–max)\tsender CPU µs/msg\tsink CPU µs/msg\tnote\t")
	for _, t := range tables {
		for _, c := range t.rows {
			r := statOf(c.each(c.rate))
			cli := statOf(c.each(func(m measure) float64 { return c.perMsg(m.cli) }))
			sk := statOf(c.each(func(m measure) float64 { return c.perMsg(m.sink) }))
			note := ""
			switch {
			case c.rawOps:
				note = "operations/s, timed inside the process"
				sk = stat{}
			case c.kind == kindDurable:
				e := statOf(c.each(func(m measure) float64 { return float64(c.n) / m.enqueue.Seconds() }))
				note = fmt.Sprintf("Enqueue alone %.0f/s", e.med)
			}
			if len(c.ms) > 0 && c.ms[0].note != "" {
				note += " " + c.ms[0].note
			}
			sinkCol := fmt.Sprintf("%.1f", sk.med)
			if c.rawOps {
				sinkCol = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f–%.0f\t%.1f\t%s\t%s\t\n",
				t.name, c.label, c.n, r.med, r.lo, r.hi, cli.med, sinkCol, note)
		}
	}
	tw.Flush()
}

// goal compares two rows of a size: the median over rounds of a's value
// divided by b's in the same round, against a target.
type goal struct {
	what     string
	a, b     string // row keys
	value    func(*contender, measure) float64
	atLeast  float64 // the ratio must be ≥ atLeast; 0 → see atMost
	atMost   float64 // the ratio must be ≤ atMost; 0 → no goal
	sizeOnly string  // "" → every size
}

func rateOf(c *contender, m measure) float64 { return c.rate(m) }
func cpuOf(c *contender, m measure) float64  { return c.perMsg(m.cli) }

// targets are the ratios the table reports, with the targets of issue 18
// (and issue 7's, at 20 ms).
var targets = []goal{
	{what: "Send, defaults ÷ smtp-source, msgs/s", a: "send", b: "source", value: rateOf, atLeast: 1.0},
	{what: "Send, defaults ÷ smtp-source, sender CPU/msg", a: "send", b: "source", value: cpuOf, atMost: 1.0},
	{what: "Send, tuned ÷ smtp-source, msgs/s", a: "send-tuned", b: "source", value: rateOf},
	{what: "SendRaw ÷ smtp-source, msgs/s", a: "sendraw", b: "source", value: rateOf},
	{what: "Send ÷ go-mail, msgs/s", a: "send", b: "gomail", value: rateOf},
	{what: "Send ÷ go-mail at 20 ms RTT, msgs/s", a: "send-rtt", b: "gomail-rtt", value: rateOf, atLeast: 3},
	{what: "durable ÷ Send, msgs/s", a: "durable", b: "send", value: rateOf, atLeast: 0.5},
	{what: "durable ÷ Send at 20 ms RTT, msgs/s", a: "durable-rtt", b: "send-rtt", value: rateOf},
	{what: "Ed25519-signed ÷ unsigned Send, msgs/s", a: "signed-ed25519", b: "send", value: rateOf, atLeast: 0.8, sizeOnly: "5 KB"},
	{what: "Ed25519-signed ÷ unsigned Send, msgs/s", a: "signed-ed25519", b: "send", value: rateOf, atLeast: 0.85, sizeOnly: "60 KB"},
	{what: "RSA-signed Send ÷ raw RSA-2048 signatures/s", a: "signed-rsa", b: "raw-rsa", value: rateOf, atLeast: 0.9},
	{what: "RSA-signed ÷ unsigned Send, msgs/s", a: "signed-rsa", b: "send", value: rateOf},
}

// printGoals prints every ratio of targets whose rows ran, and whether its
// target is met.
func printGoals(tables []sizeTable) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "size\tratio\tmedian\tspread\tgoal\t")
	for _, t := range tables {
		for _, g := range targets {
			a, b := t.row(g.a), t.row(g.b)
			if a == nil || b == nil || (g.sizeOnly != "" && g.sizeOnly != t.name) {
				continue
			}
			var rs []float64
			for i := range min(len(a.ms), len(b.ms)) {
				rs = append(rs, g.value(a, a.ms[i])/g.value(b, b.ms[i]))
			}
			s := statOf(rs)
			verdict := ""
			switch {
			case g.atLeast > 0 && s.med >= g.atLeast:
				verdict = fmt.Sprintf("≥ %.2f× met", g.atLeast)
			case g.atLeast > 0:
				verdict = fmt.Sprintf("≥ %.2f× MISSED", g.atLeast)
			case g.atMost > 0 && s.med <= g.atMost:
				verdict = fmt.Sprintf("≤ %.2f× met", g.atMost)
			case g.atMost > 0:
				verdict = fmt.Sprintf("≤ %.2f× MISSED", g.atMost)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f×\t%.2f–%.2f\t%s\t\n", t.name, g.what, s.med, s.lo, s.hi, verdict)
			l := goals.Line{Bench: "relay", What: t.name + ": " + g.what, Value: fmt.Sprintf("%.2f× (%.2f–%.2f)", s.med, s.lo, s.hi)}
			switch {
			case g.atLeast > 0:
				l.Goal, l.Met = fmt.Sprintf("≥ %.2f×", g.atLeast), s.med >= g.atLeast
			case g.atMost > 0:
				l.Goal, l.Met = fmt.Sprintf("≤ %.2f×", g.atMost), s.med <= g.atMost
			}
			goals.Record(l)
		}
	}
	tw.Flush()
}
