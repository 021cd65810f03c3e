// Command loadtest runs the "load with faults" test of the relay package
// (TestLoadWithFaults in relay/load_test.go) at full size: 100,000 small
// messages enqueued through relay.Client with boltstore, to relaytest MX
// hosts that tempfail 20% of RCPTs, drop 5% of connections after the final
// dot and answer slowly now and then, while the sending process is killed
// with SIGKILL and restarted three times. At the end every message must be
// delivered or still queued with a reason, none lost, and every duplicate
// explained by a drop after the dot or a kill; the test prints the counts.
//
// It runs `go test` on the mxrelay module with MXRELAY_LOADTEST_N and
// MXRELAY_LOADTEST_SEED set, so the go command must be on PATH. It takes
// about a minute on two cores (several with -race) and a few hundred MB of
// temporary disk.
//
// Run it from the bench module:
//
//	cd bench && go run ./loadtest [-n 100000] [-seed 7] [-race]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
)

func main() {
	n := flag.Int("n", 100_000, "messages to send")
	seed := flag.Uint64("seed", 7, "seed of the fault pattern")
	race := flag.Bool("race", false, "build the test with the race detector")
	flag.Parse()
	if *n < 1 {
		log.Fatal("loadtest: -n must be positive")
	}

	// The mxrelay module is where bench/go.mod's replace directive points.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mxrelay/mxrelay").Output()
	if err != nil {
		log.Fatalf("loadtest: finding the mxrelay module: %v", err)
	}
	dir := strings.TrimSpace(string(out))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	args := []string{"test", "-count=1", "-timeout=2h", "-v", "-run=^TestLoadWithFaults$"}
	if *race {
		args = append(args, "-race")
	}
	args = append(args, "./relay")
	// CommandContext kills go test, by its PID, on Ctrl-C; the test kills
	// its own children.
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MXRELAY_LOADTEST_N="+strconv.Itoa(*n),
		"MXRELAY_LOADTEST_SEED="+strconv.FormatUint(*seed, 10))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Printf("loadtest: go %s (in %s) with MXRELAY_LOADTEST_N=%d MXRELAY_LOADTEST_SEED=%d\n",
		strings.Join(args, " "), dir, *n, *seed)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		log.Fatalf("loadtest: %v", err)
	}
}
