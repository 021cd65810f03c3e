package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
)

// A durable queue in one file: Enqueue returns once the job is on disk.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "mxrelay")
	defer os.RemoveAll(dir)
	s, err := boltstore.Open(filepath.Join(dir, "queue.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	q := &queue.Queue{Store: s} // set Deliverer and call q.Run to send
	ctx := context.Background()
	j := queue.NewJob("shop@example.org", []string{"alice@example.com"}, []byte("Subject: hi\r\n\r\nhi\r\n"))
	if _, err := q.Enqueue(ctx, j); err != nil {
		fmt.Println(err)
		return
	}
	// A second process opening the same file fails fast.
	_, err = boltstore.OpenWith(s.Path(), boltstore.Options{Timeout: 1})
	fmt.Println(err != nil)
	st, _ := q.Stats(ctx)
	fmt.Printf("%+v\n", st)
	// Output:
	// true
	// {Queued:1 Active:0 Held:0 Corrupt:0}
}
