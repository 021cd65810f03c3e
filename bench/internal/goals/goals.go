// Package goals gathers the figures the bench programs hold against a
// target into one table: each program records its lines with Record, which
// appends them to the file MXRELAY_BENCH_GOALS names (nothing when it is
// unset), and bench/all reads them back and prints them together.
package goals

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// Env names the file Record appends to.
const Env = "MXRELAY_BENCH_GOALS"

// Line is one figure: what was measured, its value as printed, the target
// (empty when the figure is for information) and whether it is met.
type Line struct {
	Bench string `json:"bench"` // the program or benchmark that measured it
	What  string `json:"what"`
	Value string `json:"value"`
	Goal  string `json:"goal,omitempty"`
	Met   bool   `json:"met,omitempty"`
}

// Verdict is "met", "MISSED", or "" for a line without a goal.
func (l Line) Verdict() string {
	switch {
	case l.Goal == "":
		return ""
	case l.Met:
		return "met"
	default:
		return "MISSED"
	}
}

// Record appends l to the file named by MXRELAY_BENCH_GOALS, if set. A
// failure to write is reported on stderr: the program's own output stands.
func Record(l Line) {
	path := os.Getenv(Env)
	if path == "" {
		return
	}
	b, err := json.Marshal(l)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, err = f.Write(append(b, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "goals: %v\n", err)
	}
}

// Read returns the lines recorded in the file at path, in order.
func Read(path string) ([]Line, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return out, fmt.Errorf("goals: %s: %w", path, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
