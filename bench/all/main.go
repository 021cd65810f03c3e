// Command all runs every benchmark of issue 18 in turn, each as a process
// of its own with nothing else of the harness alive, shows each one's
// output as it runs, and ends with one table of every figure held against
// a goal, met or MISSED:
//
//   - ./relay: bulk sending against smtp-source and go-mail, the signed
//     and durable paths (and, with -postfix, the durable path against a
//     private Postfix queueing on disk);
//   - ./scale: 100,000 recipient domains, heap before, at the peak, after;
//   - ./pgstore BenchmarkScale: 1,000,000 queued jobs over 10, 10,000 and
//     100,000 routing keys (needs MXRELAY_TEST_POSTGRES; skipped, and said
//     so, without it);
//   - boltstore BenchmarkClaimLatency: heap and claim latency at 10,000,
//     100,000 and 1,000,000 queued.
//
// Run it from bench/, as root for smtp-sink and Postfix:
//
//	cd bench && go run ./all [-rounds 5] [-quick] [-postfix]
//
// The relay and scale programs record their goal lines in a file
// (package goals); the two go test benchmarks print tables, read here.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxrelay/mxrelay/bench/internal/goals"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds of ./relay")
	quick := flag.Bool("quick", false, "./relay -quick, and 200,000 jobs for pgstore instead of 1,000,000")
	postfix := flag.Bool("postfix", os.Geteuid() == 0, "also compare the durable path with a private Postfix (needs root)")
	flag.Parse()
	if _, err := os.Stat("relay/main.go"); err != nil {
		log.Fatal("all: run it from bench/ (cd bench && go run ./all)")
	}
	dir, err := os.MkdirTemp("", "mxrelay-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "goals.jsonl")
	env := append(os.Environ(), goals.Env+"="+file)
	start := time.Now()
	var failed []string

	relayArgs := []string{"run", "./relay", "-rounds", strconv.Itoa(*rounds)}
	if *quick {
		relayArgs = append(relayArgs, "-quick")
	}
	if *postfix {
		relayArgs = append(relayArgs, "-postfix")
	}
	if _, err := step("relay", env, relayArgs...); err != nil {
		failed = append(failed, "relay: "+err.Error())
	}
	if _, err := step("scale", env, "run", "./scale"); err != nil {
		failed = append(failed, "scale: "+err.Error())
	}

	var extra []goals.Line
	if os.Getenv("MXRELAY_TEST_POSTGRES") == "" {
		fmt.Println("\n== pgstore: skipped, MXRELAY_TEST_POSTGRES is not set (a PostgreSQL DSN)")
		extra = append(extra, goals.Line{Bench: "pgstore", What: "claim cost over 100,000 keys ÷ over 10", Value: "not run (no MXRELAY_TEST_POSTGRES)", Goal: "≤ 1.50×"})
	} else {
		pgEnv := env
		if *quick {
			pgEnv = append(pgEnv, "MXRELAY_BENCH_SCALE_JOBS=200000")
		}
		out, err := step("pgstore", pgEnv, "test", "-run", "^$", "-bench", "Scale", "-benchtime", "1x", "-timeout", "1h", "./pgstore/")
		if err != nil {
			failed = append(failed, "pgstore: "+err.Error())
		}
		extra = append(extra, pgstoreGoals(out)...)
	}
	out, err := step("boltstore", append(env, "MXRELAY_BENCH_MILLION=1"),
		"test", "-run", "^$", "-bench", "ClaimLatency", "-benchtime", "1x", "-timeout", "1h", "github.com/mxrelay/mxrelay/queue/boltstore")
	if err != nil {
		failed = append(failed, "boltstore: "+err.Error())
	}
	extra = append(extra, boltGoals(out)...)

	lines, err := goals.Read(file)
	if err != nil {
		log.Print(err)
	}
	lines = append(lines, extra...)
	fmt.Printf("\n== every goal, %s in all (go %s)\n", time.Since(start).Round(time.Second), goVersion())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bench\tfigure\tvalue\tgoal\t\t")
	met, missed := 0, 0
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", l.Bench, l.What, l.Value, l.Goal, l.Verdict())
		switch l.Verdict() {
		case "met":
			met++
		case "MISSED":
			missed++
		}
	}
	tw.Flush()
	fmt.Printf("%d goals met, %d missed\n", met, missed)
	for _, f := range failed {
		fmt.Println("FAILED:", f)
	}
	if len(failed) > 0 {
		os.Exit(1)
	}
}

// step runs the go command with args in its own process, its output shown
// as it comes and returned.
func step(name string, env []string, args ...string) (string, error) {
	fmt.Printf("\n== %s: go %s\n", name, strings.Join(args, " "))
	var buf bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Env = env
	cmd.Stdout = io.MultiWriter(os.Stdout, &buf)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return buf.String(), err
}

// pgRow is a row of BenchmarkScale's table: keys, jobs, load s, put/s,
// claim ms, claim+fin/s x1, claim+fin/s x16, empty x16.
var pgRow = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)

// pgstoreGoals reads BenchmarkScale's table: the rates at each key count,
// and the claim cost at the most keys against the fewest.
func pgstoreGoals(out string) []goals.Line {
	rows := pgRow.FindAllStringSubmatch(out, -1)
	if len(rows) == 0 {
		return []goals.Line{{Bench: "pgstore", What: "claim cost over 100,000 keys ÷ over 10", Value: "no table printed", Goal: "≤ 1.50×"}}
	}
	var out2 []goals.Line
	for _, r := range rows {
		out2 = append(out2, goals.Line{Bench: "pgstore", What: fmt.Sprintf("%s jobs over %s keys: put/s, claim ms, claim+finish/s (1 and 16 workers)", r[2], r[1]),
			Value: fmt.Sprintf("%s, %s, %s, %s", r[4], r[5], r[6], r[7])})
	}
	first, _ := strconv.ParseFloat(rows[0][5], 64)
	last, _ := strconv.ParseFloat(rows[len(rows)-1][5], 64)
	ratio := last / first
	out2 = append(out2, goals.Line{Bench: "pgstore", What: fmt.Sprintf("claim cost over %s keys ÷ over %s", rows[len(rows)-1][1], rows[0][1]),
		Value: fmt.Sprintf("%.2f×", ratio), Goal: "≤ 1.50×", Met: ratio <= 1.5})
	return out2
}

// boltRow is a line of BenchmarkClaimLatency.
var boltRow = regexp.MustCompile(`claim latency,\s+(\d+) queued: Claim of 1 median (\S+) p99 (\S+); Claim of 64 median (\S+) p99 (\S+); heap in use\s+([\d.]+) MB`)

// boltGoals reads BenchmarkClaimLatency's lines: the heap at the most
// jobs under 100 MB, and the median claim there against the fewest.
func boltGoals(out string) []goals.Line {
	rows := boltRow.FindAllStringSubmatch(out, -1)
	if len(rows) == 0 {
		return []goals.Line{{Bench: "boltstore", What: "heap with 1,000,000 queued", Value: "no figures printed", Goal: "< 100 MB"}}
	}
	var lines []goals.Line
	for _, r := range rows {
		lines = append(lines, goals.Line{Bench: "boltstore", What: r[1] + " queued: Claim of 1 median/p99, of 64 median/p99",
			Value: fmt.Sprintf("%s/%s, %s/%s", r[2], r[3], r[4], r[5])})
	}
	last := rows[len(rows)-1]
	heap, _ := strconv.ParseFloat(last[6], 64)
	lines = append(lines, goals.Line{Bench: "boltstore", What: "heap in use with " + last[1] + " queued",
		Value: last[6] + " MB", Goal: "< 100 MB", Met: heap < 100})
	d0, err0 := time.ParseDuration(rows[0][2])
	d1, err1 := time.ParseDuration(last[2])
	if err0 == nil && err1 == nil && d0 > 0 {
		ratio := float64(d1) / float64(d0)
		lines = append(lines, goals.Line{Bench: "boltstore", What: "median Claim of 1 at " + last[1] + " queued ÷ at " + rows[0][1],
			Value: fmt.Sprintf("%.2f×", ratio), Goal: "≤ 2.00× (flat)", Met: ratio <= 2})
	}
	return lines
}

// goVersion is the go command's version.
func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
