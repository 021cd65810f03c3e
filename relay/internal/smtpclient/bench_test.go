package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// benchMessage is a typical message: header and base64-like 76-column
// lines, CRLF, about size octets.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@x.test\r\nTo: b@y.test\r\nSubject: benchmark\r\nMIME-Version: 1.0\r\n\r\n")
	line := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 3)[:76] + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString(".starts with a dot\r\n")
	return b.Bytes()
}

// perOp records the ns/op of the final (largest) run of a sub-benchmark.
func perOp(b *testing.B, dst *float64) {
	*dst = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// BenchmarkDataWriter compares DataWriter with net/textproto's DotWriter
// (the writer under net/smtp and go-smtp's client) on a 1 MB message.
func BenchmarkDataWriter(b *testing.B) {
	msg := benchMessage(1 << 20)
	var ours, peer float64
	b.Run("mxrelay", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		var d DataWriter
		for i := 0; i < b.N; i++ {
			d.Reset(io.Discard, true)
			d.Write(msg)
			d.Close()
		}
		perOp(b, &ours)
	})
	b.Run("textproto", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		w := textproto.NewWriter(bufio.NewWriter(io.Discard))
		for i := 0; i < b.N; i++ {
			dw := w.DotWriter()
			dw.Write(msg)
			dw.Close()
		}
		perOp(b, &peer)
	})
	if ours > 0 {
		fmt.Printf("DataWriter throughput: %.2fx of textproto.DotWriter\n", peer/ours)
	}
}

// BenchmarkSend sends 5 KB messages over one reused loopback session to a
// go-smtp server, with this client (PIPELINING and CHUNKING, or DATA) and
// with go-smtp's client, and prints the msgs/s ratio.
func BenchmarkSend(b *testing.B) {
	msg := benchMessage(5 << 10)
	addr := startGoSMTP(b, discardBackend{}, nil) // keeps nothing, unlike gsBackend
	ctx := context.Background()
	env := &Envelope{From: "a@x.test", To: []string{"b@y.test"}}
	res := map[string]float64{}
	run := func(name string, opts *Options) {
		b.Run(name, func(b *testing.B) {
			c, err := Dial(ctx, "tcp", addr, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello(ctx, "client.test"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Send(ctx, env, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			res[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	run("mxrelay-bdat", nil)
	run("mxrelay-data", &Options{DisableChunking: true})
	b.Run("go-smtp", func(b *testing.B) {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := c.SendMail("a@x.test", []string{"b@y.test"}, bytes.NewReader(msg)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		res["go-smtp"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if p := res["go-smtp"]; p > 0 && res["mxrelay-bdat"] > 0 {
		fmt.Printf("msgs/s vs go-smtp client: BDAT %.2fx, DATA %.2fx\n", p/res["mxrelay-bdat"], p/res["mxrelay-data"])
	}
}

// discardBackend accepts every message and keeps nothing.
type discardBackend struct{}

func (discardBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }

type discardSession struct{}

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// BenchmarkSendParallel is BenchmarkSend with GOMAXPROCS*4 sessions at once.
func BenchmarkSendParallel(b *testing.B) {
	msg := benchMessage(5 << 10)
	addr := startGoSMTP(b, discardBackend{}, nil)
	ctx := context.Background()
	res := map[string]float64{}
	b.Run("mxrelay", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			c, err := Dial(ctx, "tcp", addr, nil)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			if err := c.Hello(ctx, "client.test"); err != nil {
				b.Error(err)
				return
			}
			env := &Envelope{From: "a@x.test", To: []string{"b@y.test"}}
			for pb.Next() {
				if _, err := c.Send(ctx, env, msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		res["mxrelay"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("go-smtp", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			c, err := smtp.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			if err := c.Hello("client.test"); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if err := c.SendMail("a@x.test", []string{"b@y.test"}, bytes.NewReader(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		res["go-smtp"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if p, o := res["go-smtp"], res["mxrelay"]; p > 0 && o > 0 {
		fmt.Printf("parallel msgs/s vs go-smtp client: %.2fx\n", p/o)
	}
}
