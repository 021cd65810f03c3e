package report

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkParseDSN parses a Postfix-shaped failed DSN with a returned
// header part (text/rfc822-headers), the commonest bounce a relay sees.
func BenchmarkParseDSN(b *testing.B) {
	data, err := readFixture("postfix-failed.eml")
	if err != nil {
		b.Fatal(err)
	}
	benchParse(b, data, DSN, "dsn/s")
}

// BenchmarkParseDSNFullReturn parses a DSN that returns the whole original
// message with a 1 MiB body, which Parse skips without decoding.
func BenchmarkParseDSNFullReturn(b *testing.B) {
	data, err := readFixture("exim-dsn.eml")
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("A long line of the returned message that nobody needs to read.\r\n", 1<<20/66)
	data = bytes.Replace(data, []byte("Welcome! Thanks for signing up.\r\n"), []byte(body), 1)
	benchParse(b, data, DSN, "dsn/s")
}

// BenchmarkParseAutoReply parses an Outlook automatic reply, which goes
// through every recogniser before the last.
func BenchmarkParseAutoReply(b *testing.B) {
	data, err := readFixture("autoreply-outlook.eml")
	if err != nil {
		b.Fatal(err)
	}
	benchParse(b, data, AutoReply, "msgs/s")
}

func benchParse(b *testing.B, data []byte, want Kind, unit string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Parse(bytes.NewReader(data))
		if err != nil || r.Kind != want {
			b.Fatalf("Parse: %v, %v", r, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}
