//go:build linux || darwin || freebsd

package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"
)

var sink byte

// A read of a mapped page past the end of its file (what bbolt does on a
// truncated file) raises SIGBUS; safely turns it into ErrCorrupt instead of
// letting it kill the process, and restores the goroutine's setting.
func TestSafelyRecoversFault(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps := os.Getpagesize()
	if err := f.Truncate(int64(2 * ps)); err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*ps, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(m)
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	before := debug.SetPanicOnFault(false)
	err = safely("f", func() error { sink = m[ps]; return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("safely: %v, want ErrCorrupt", err)
	}
	t.Log(err)
	if now := debug.SetPanicOnFault(before); now {
		t.Errorf("safely left SetPanicOnFault on")
	}

	err = safely("f", func() error { panic("assertion failed: page 3") })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("safely: %v, want ErrCorrupt", err)
	}
	want := errors.New("x")
	if err := safely("f", func() error { return want }); err != want {
		t.Fatalf("safely: %v, want its function's error", err)
	}
}
