package bounce

import "testing"

func TestPhrasePattern(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // symbols as text, space for symSpace
	}{
		{"user unknown", " user unknown "},
		{"doesn't exist", " doesn t exist "},
		{"throttl*", " throttl"},
		{"*spam*", "spam"},
		{"*polic*", "polic"},
		{"RFC 5322", " rfc 5322 "},
		{"a  b", " a b "},
	} {
		syms, err := phrasePattern(tc.in)
		if err != nil {
			t.Errorf("phrasePattern(%q): %v", tc.in, err)
			continue
		}
		got := make([]byte, len(syms))
		for i, s := range syms {
			switch {
			case s == symSpace:
				got[i] = ' '
			case s <= 26:
				got[i] = 'a' + s - 1
			default:
				got[i] = '0' + s - 27
			}
		}
		if string(got) != tc.want {
			t.Errorf("phrasePattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "*", "**", " - ", "a*b"} {
		if _, err := phrasePattern(bad); err == nil {
			t.Errorf("phrasePattern(%q): no error", bad)
		}
	}
}

func TestMatcher(t *testing.T) {
	m, err := newMatcher([]string{"user unknown", "*spam*", "throttl*", "no such user", "user"}, []int{0, 1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"User Unknown", []int{0, 4}},
		{"550-5.1.1 user\r\n550-5.1.1 unknown", []int{0, 4}},
		{"antispam", []int{1}},
		{"SPAMMER", []int{1}},
		{"throttled", []int{2}},
		{"unthrottled", nil},
		{"no such user here", []int{3, 4}},
		{"users", nil},
		{"superuser", nil},
		{"", nil},
	} {
		got := m.scan(tc.text)
		var want ruleSet
		for _, i := range tc.want {
			want.add(i)
		}
		if got != want {
			t.Errorf("scan(%q) = %x, want %x", tc.text, got, want)
		}
	}
}

// The automaton stays small: its tables are built once, at init.
func TestMatcherSize(t *testing.T) {
	table, index := compiled()
	states := len(index.next)
	bytes := states * symCount * 2
	t.Logf("%d rules, %d states, %d output sets, %d KiB of transitions", len(table), states, len(index.sets), bytes>>10)
	if bytes > 512<<10 {
		t.Errorf("the automaton takes %d KiB", bytes>>10)
	}
}
