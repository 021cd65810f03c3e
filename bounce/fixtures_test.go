package bounce_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/bounce"
)

// fixture is one line of testdata/replies.tsv.
type fixture struct {
	line     int
	code     int
	enhanced string
	want     bounce.Class // Rule is not compared
	source   string
	text     string
}

// loadFixtures reads testdata/replies.tsv: "@source" lines name the
// sources, every other line that is not blank or a comment is an entry.
func loadFixtures(t testing.TB) ([]fixture, map[string]string) {
	t.Helper()
	f, err := os.Open("testdata/replies.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sources := map[string]string{}
	var fx []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		if fields[0] == "@source" {
			if len(fields) != 4 || fields[1] == "" || !strings.HasPrefix(fields[2], "http") || fields[3] == "" {
				t.Fatalf("replies.tsv:%d: want @source, key, URL, title", n)
			}
			if _, dup := sources[fields[1]]; dup {
				t.Fatalf("replies.tsv:%d: source %q named twice", n, fields[1])
			}
			sources[fields[1]] = fields[2]
			continue
		}
		if len(fields) != 7 {
			t.Fatalf("replies.tsv:%d: %d fields, want 7", n, len(fields))
		}
		e := fixture{line: n, enhanced: fields[1], source: fields[5], text: unescape(fields[6])}
		if e.code, err = strconv.Atoi(fields[0]); err != nil {
			t.Fatalf("replies.tsv:%d: code: %v", n, err)
		}
		if e.enhanced == "-" {
			e.enhanced = ""
		}
		if e.want.Category, err = bounce.ParseCategory(fields[2]); err != nil {
			t.Fatalf("replies.tsv:%d: %v", n, err)
		}
		switch fields[3] {
		case "permanent":
			e.want.Permanent = true
		case "temporary":
		default:
			t.Fatalf("replies.tsv:%d: permanence %q", n, fields[3])
		}
		switch fields[4] {
		case "suppress":
			e.want.Suppress = true
		case "keep":
		default:
			t.Fatalf("replies.tsv:%d: suppress %q", n, fields[4])
		}
		if _, ok := sources[e.source]; !ok {
			t.Fatalf("replies.tsv:%d: unknown source %q", n, e.source)
		}
		if e.text == "" {
			t.Fatalf("replies.tsv:%d: no text", n)
		}
		fx = append(fx, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return fx, sources
}

// unescape reads the \n, \t and \\ of a fixture's text.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestFixtures checks every real reply in testdata/replies.tsv.
func TestFixtures(t *testing.T) {
	fx, sources := loadFixtures(t)
	if len(fx) < 80 {
		t.Errorf("%d fixtures, want at least 80", len(fx))
	}
	perCategory := map[bounce.Category]int{}
	var failed int
	for _, e := range fx {
		got := bounce.Classify(e.code, e.enhanced, e.text)
		perCategory[e.want.Category]++
		if got.Category == e.want.Category && got.Permanent == e.want.Permanent && got.Suppress == e.want.Suppress {
			continue
		}
		failed++
		t.Errorf("replies.tsv:%d (%s, %s):\n\tClassify(%d, %q, %q)\n\tgot  %v\n\twant %s %s%s",
			e.line, e.source, sources[e.source], e.code, e.enhanced, short(e.text),
			got, e.want.Category, permanence(e.want.Permanent), suppressWord(e.want.Suppress))
	}
	if failed > 0 {
		t.Logf("%d of %d fixtures failed", failed, len(fx))
	}
	for c := bounce.Other; c <= bounce.Routing; c++ {
		if perCategory[c] == 0 {
			t.Errorf("no fixture of category %v", c)
		}
	}
}

func short(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

func permanence(p bool) string {
	if p {
		return "permanent"
	}
	return "temporary"
}

func suppressWord(s bool) string {
	if s {
		return " suppress"
	}
	return ""
}

// The fixtures are also a fine fuzzing corpus.
func fixtureSeeds(f *testing.F) {
	fx, _ := loadFixtures(f)
	for _, e := range fx {
		f.Add(e.code, e.enhanced, e.text)
	}
	f.Add(0, "", "")
}
