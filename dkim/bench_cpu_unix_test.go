//go:build unix

package dkim_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// all goroutines and the garbage collector included. Unlike wall time it
// does not grow when other processes compete for the cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
