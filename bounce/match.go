package bounce

import (
	"fmt"
	"slices"
)

// This file holds the text side of the rules: how a reply text is
// normalised and how every rule's phrases are found in it in one pass.
//
// Normalisation: ASCII letters are folded to lower case; every run of
// anything that is not a letter or a digit (spaces, punctuation, line
// breaks, bytes beyond ASCII) becomes one space; reply codes and enhanced
// status codes that start a token ("550-5.7.1", "5.7.1", "550") are left
// out, so that a phrase folded across the lines of a multi-line reply
// ("... is likely\r\n550-5.7.1 unsolicited mail") still reads as one. The
// result has a space at each end, so " user unknown " matches whole words.
//
// A phrase is written as plain words ("user unknown") and matches those
// whole words; a leading or trailing "*" lets the first or last word run on
// ("throttl*" matches "throttled", "*spam*" matches "antispam"). Phrases are
// normalised the same way as texts, so "doesn't exist" matches "doesn’t
// exist" and "doesn t exist".
//
// All phrases of all rules go into one Aho-Corasick automaton, built once,
// on first use: a text is read once, byte by byte, whatever the number of
// phrases. It is written here because the standard library has no
// multi-pattern matcher, and a regexp per rule would read a text once per
// rule, on every failed recipient.

// maxText bounds the bytes of a text that are read; a reply or a
// Diagnostic-Code is far shorter, and a longer text is most likely a whole
// bounce body whose start says what matters.
const maxText = 8 << 10

// The automaton's alphabet: a space, the 26 letters, the 10 digits.
const (
	symSpace = 0
	symCount = 37
	symNone  = 0xfe // a separator, read as a space
	symWhite = 0xff // white space, which also separates tokens
)

var symbols = func() (t [256]uint8) {
	for i := range t {
		t[i] = symNone
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = uint8(1 + c - 'a')
		t[c-'a'+'A'] = uint8(1 + c - 'a')
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = uint8(27 + c - '0')
	}
	for _, c := range " \t\r\n\v\f" {
		t[c] = symWhite
	}
	return t
}()

// ruleSet holds one bit per rule of the table, by index.
type ruleSet [2]uint64

const maxRules = 128

func (s *ruleSet) add(i int)       { s[i/64] |= 1 << (i % 64) }
func (s ruleSet) has(i int) bool   { return s[i/64]&(1<<(i%64)) != 0 }
func (s *ruleSet) union(o ruleSet) { s[0] |= o[0]; s[1] |= o[1] }

// matcher is the automaton: a DFA over symbols whose states say which
// rules' phrases end there.
type matcher struct {
	next [][symCount]uint16 // next[state][symbol]; state 0 is the root
	out  []uint16           // index into sets of the rules matched on entering a state; 0 = none
	sets []ruleSet          // sets[0] is empty
}

// phrasePattern turns a phrase into the symbols to look for.
func phrasePattern(p string) ([]uint8, error) {
	runsOnLeft, runsOnRight := false, false
	if len(p) > 0 && p[0] == '*' {
		runsOnLeft, p = true, p[1:]
	}
	if len(p) > 0 && p[len(p)-1] == '*' {
		runsOnRight, p = true, p[:len(p)-1]
	}
	var syms []uint8
	if !runsOnLeft {
		syms = append(syms, symSpace)
	}
	words := 0
	space := true
	for i := 0; i < len(p); i++ {
		s := symbols[p[i]]
		if p[i] == '*' {
			return nil, fmt.Errorf("bounce: phrase %q: '*' only at either end", p)
		}
		if s >= symNone {
			space = true
			continue
		}
		if space && words > 0 {
			syms = append(syms, symSpace)
		}
		if space {
			words++
		}
		space = false
		syms = append(syms, s)
	}
	if words == 0 {
		return nil, fmt.Errorf("bounce: empty phrase %q", p)
	}
	if !runsOnRight {
		syms = append(syms, symSpace)
	}
	return syms, nil
}

// newMatcher builds the automaton for phrases[i] belonging to rule owner[i].
func newMatcher(phrases []string, owner []int) (*matcher, error) {
	patterns := make([][]uint8, len(phrases))
	size := 1
	for i, p := range phrases {
		syms, err := phrasePattern(p)
		if err != nil {
			return nil, err
		}
		patterns[i] = syms
		size += len(syms)
	}
	m := &matcher{next: make([][symCount]uint16, 1, size)}
	outs := make([]ruleSet, 1, size) // per state, before deduplication
	for i, syms := range patterns {
		s := 0
		for _, c := range syms {
			if m.next[s][c] == 0 {
				if len(m.next) >= 1<<16 {
					return nil, fmt.Errorf("bounce: too many phrase states")
				}
				m.next = append(m.next, [symCount]uint16{})
				outs = append(outs, ruleSet{})
				m.next[s][c] = uint16(len(m.next) - 1)
			}
			s = int(m.next[s][c])
		}
		outs[s].add(owner[i])
	}

	// Breadth first: fail links, then every missing edge resolved through
	// them, so that scanning never walks a fail chain.
	fail := make([]uint16, len(m.next))
	queue := make([]uint16, 0, len(m.next))
	for c := 0; c < symCount; c++ {
		if t := m.next[0][c]; t != 0 {
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		outs[s].union(outs[fail[s]])
		for c := 0; c < symCount; c++ {
			t := m.next[s][c]
			if t == 0 {
				m.next[s][c] = m.next[fail[s]][c]
				continue
			}
			fail[t] = m.next[fail[s]][c]
			queue = append(queue, t)
		}
	}

	m.next = slices.Clone(m.next) // drop the capacity the patterns reserved
	m.out = make([]uint16, len(m.next))
	m.sets = []ruleSet{{}}
	index := map[ruleSet]uint16{{}: 0}
	for s, o := range outs {
		k, ok := index[o]
		if !ok {
			k = uint16(len(m.sets))
			index[o] = k
			m.sets = append(m.sets, o)
		}
		m.out[s] = k
	}
	return m, nil
}

// scan returns the rules any of whose phrases occur in text.
func (m *matcher) scan(text string) ruleSet {
	if len(text) > maxText {
		text = text[:maxText]
	}
	var hits ruleSet
	next, out := m.next, m.out
	state := next[0][symSpace] // the space that starts every text
	space, tokenStart := true, true
	for i := 0; i < len(text); i++ {
		c := text[i]
		sym := symbols[c]
		switch {
		case sym == symWhite:
			tokenStart = true
		case tokenStart:
			tokenStart = false
			if '2' <= c && c <= '5' {
				j := i
				for j < len(text) && symbols[text[j]] != symWhite {
					j++
				}
				if rest := skipCodes(text[i:j]); len(rest) < j-i {
					i = j - len(rest) - 1 // go on after the codes
					continue
				}
			}
		}
		if sym >= symNone {
			if space {
				continue
			}
			sym, space = symSpace, true
		} else {
			space = false
		}
		state = next[state][sym]
		if o := out[state]; o != 0 {
			hits.union(m.sets[o])
		}
	}
	if !space {
		state = next[state][symSpace]
		if o := out[state]; o != 0 {
			hits.union(m.sets[o])
		}
	}
	return hits
}

// skipCodes drops a leading reply code ("550", "550-") and a leading
// enhanced status code ("5.7.1") from a token.
func skipCodes(tok string) string {
	if _, n := scanCode(tok); n > 0 {
		tok = tok[n:]
		if len(tok) > 0 && tok[0] == '-' {
			tok = tok[1:]
		}
	}
	if _, n := scanStatus(tok); n > 0 {
		tok = tok[n:]
	}
	return tok
}
