package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

// Whatever a job file holds, the spool opens, and Get either returns the
// job or reports a CorruptError naming it; Stats counts it exactly once.
func FuzzSpoolFile(f *testing.F) {
	f.Add([]byte(`{"format":1,"job":{"ID":"x","Recipients":[{"Addr":"a@b.example","State":2}],"Message":"aGk="}}`))
	f.Add([]byte(`{"format":2,"job":{"ID":"x"}}`))
	f.Add([]byte(`{"format":1,"job":{"ID":"y"}}`))
	f.Add([]byte(`{"format":1,"job":{"ID":"x","Created":"not a time"}}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"+jobSuffix), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSpool(dir)
		if err != nil {
			t.Fatalf("OpenSpool: %v", err)
		}
		ctx := context.Background()
		j, err := s.Get(ctx, "x")
		var ce *queue.CorruptError
		switch {
		case err == nil && j.ID != "x":
			t.Fatalf("Get: job %q from the file of x", j.ID)
		case err != nil && (!errors.As(err, &ce) || ce.ID != "x"):
			t.Fatalf("Get: %v, want a job or a CorruptError for x", err)
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Queued+st.Active+st.Held+st.Corrupt != 1 {
			t.Fatalf("Stats: %+v, %v; want the one file counted once", st, err)
		}
		if err := s.Set(ctx, "x", queue.ActionCancel); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if st, _ := s.Stats(ctx); st != (queue.Stats{}) {
			t.Fatalf("Stats after Cancel: %+v", st)
		}
	})
}
