package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	bolt "go.etcd.io/bbolt"
)

const storeJobs = 1000

var stores struct {
	sync.Mutex
	files map[int][]byte
}

// writeStore returns the bytes of a closed store file holding n jobs over
// 20 keys, some held, some leased. The caller may change them.
func writeStore(t *testing.T, n int) []byte {
	t.Helper()
	stores.Lock()
	defer stores.Unlock()
	if b, ok := stores.files[n]; ok {
		return bytes.Clone(b)
	}
	if stores.files == nil {
		stores.files = map[int][]byte{}
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenWith(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		j := newJob(fmt.Sprintf("job%05d", i), fmt.Sprintf("d%d.example", i%20))
		j.Message = bytes.Repeat([]byte("x"), 100+i%3000) // some span pages
		j.Held = i%100 == 0
		if err := s.Put(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 50, Now: t0, Lease: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stores.files[n] = b
	return bytes.Clone(b)
}

// pageSizeOf returns the page size in a good file's first meta.
func pageSizeOf(b []byte) int { return int(ne.Uint32(b[pageHeaderSize+8:])) }

// pageInUse returns a branch or leaf page near the middle of a good file.
func pageInUse(t *testing.T, b []byte) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scratch.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	found := -1
	err = db.View(func(tx *bolt.Tx) error {
		n := int(tx.Size()) / db.Info().PageSize
		for id := n / 2; id < n; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p != nil && (p.Type == "leaf" || p.Type == "branch") {
				found = id
				return nil
			}
		}
		return errors.New("no page in use in the second half")
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// openDamaged writes b to a file, opens it and checks that Open fails
// with ErrCorrupt and leaves the file as it was.
func openDamaged(t *testing.T, b []byte) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenWith(path, Options{NoSync: true, Timeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a damaged file succeeded")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	if errors.Is(err, queue.ErrCorrupt) {
		t.Errorf("Open: %v matches queue.ErrCorrupt, which is for one record", err)
	}
	after, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !bytes.Equal(after, b) {
		t.Errorf("Open of a damaged file changed it (%d bytes before, %d after)", len(b), len(after))
	}
	return err
}

func TestOpenDamagedFile(t *testing.T) {
	good := writeStore(t, storeJobs)
	ps := pageSizeOf(good)
	mid := pageInUse(t, good)
	damage := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	checksums := func(b []byte) []byte {
		b[pageHeaderSize+metaChecksumOff] ^= 1
		b[ps+pageHeaderSize+metaChecksumOff] ^= 1
		return b
	}
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"truncated in half", good[:len(good)/2]},
		{"truncated to a page", good[:ps]},
		{"not whole pages", good[:len(good)-100]},
		{"zeroed page", damage(func(b []byte) []byte { clear(b[mid*ps : (mid+1)*ps]); return b })},
		{"garbage page", damage(func(b []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := mid * ps; i < (mid+1)*ps; i++ {
				b[i] = byte(r.Uint32())
			}
			return b
		})},
		{"bad magic in both metas", damage(func(b []byte) []byte {
			b[pageHeaderSize] ^= 0xff
			b[ps+pageHeaderSize] ^= 0xff
			return b
		})},
		{"bad checksum in both metas", damage(checksums)},
		{"zeroed metas", damage(func(b []byte) []byte { clear(b[:2*ps]); return b })},
		{"not a bbolt file", bytes.Repeat([]byte("From: a@example.org\r\n"), 2000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := openDamaged(t, c.file)
			t.Log(err)
		})
	}
}

// With one meta page damaged, bbolt falls back on the other: the store
// opens, with at most the last transaction lost.
func TestOpenOneBadMeta(t *testing.T) {
	good := writeStore(t, storeJobs)
	ps := pageSizeOf(good)
	for page := range 2 {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			b := bytes.Clone(good)
			b[page*ps+pageHeaderSize+metaChecksumOff] ^= 1
			path := filepath.Join(t.TempDir(), "q.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s := open(t, path)
			ctx := context.Background()
			if _, err := s.Get(ctx, "job00001"); err != nil {
				t.Fatalf("Get: %v", err)
			}
			st, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := st.Queued + st.Active + st.Held; n != storeJobs {
				t.Errorf("Stats %+v: %d jobs, want %d", st, n, storeJobs)
			}
		})
	}
}

// A damaged key in an index, which the page checks cannot see, is found
// before Claim or lease recovery would slice it.
func TestOpenBadIndexKey(t *testing.T) {
	good := writeStore(t, storeJobs)
	for _, c := range []struct {
		name   string
		bucket []byte
		k, v   []byte
	}{
		{"due key without its time", bDue, []byte("d1.example\x00abc"), nil},
		{"due key without its NUL", bDue, []byte("d1.exampleabcdefghijkl"), nil},
		{"short heads key", bHeads, []byte("abc"), nil},
		{"short headof value", bHeadOf, []byte("d1.example"), []byte{1, 2}},
		{"leased key without its NUL", bLeased, []byte("d1.examplejob00001"), be64(1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(c.bucket).Put(c.k, c.v) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(openDamaged(t, b))
		})
	}
	t.Run("not a bucket", func(t *testing.T) {
		// Clear the bucket flag of "jobs" in the root page: the key stays,
		// as a plain value.
		b := bytes.Clone(good)
		ps := pageSizeOf(b)
		m0, _ := readMeta(bytes.NewReader(b), 0)
		m1, _ := readMeta(bytes.NewReader(b), int64(ps))
		root := m0.root
		if m1.txid > m0.txid {
			root = m1.root
		}
		p := b[int(root)*ps:]
		_, flags, count, _ := header(p)
		if flags != leafPageFlag {
			t.Fatalf("root page flags %#x, want a leaf", flags)
		}
		found := false
		for i := range count {
			koff, klen, _, _, _ := element(p, i, false)
			if bytes.Equal(p[koff:koff+klen], bJobs) {
				ne.PutUint32(p[pageHeaderSize+i*elementSize:], 0)
				found = true
			}
		}
		if !found {
			t.Fatal("no jobs bucket in the root page")
		}
		t.Log(openDamaged(t, b))
	})
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Random damage to a real store: Open fails with ErrCorrupt and leaves the
// file alone, or opens a store that works; nothing panics.
func TestOpenRandomDamage(t *testing.T) {
	good := writeStore(t, 300)
	ps := pageSizeOf(good)
	pages := len(good) / ps
	rounds := 100
	if testing.Short() {
		rounds = 50
	}
	r := rand.New(rand.NewPCG(7, 11))
	ctx := context.Background()
	opened := 0
	for round := range rounds {
		b := bytes.Clone(good)
		var what string
		switch r.IntN(5) {
		case 0:
			p := 2 + r.IntN(pages-2)
			clear(b[p*ps : (p+1)*ps])
			what = fmt.Sprintf("zeroed page %d", p)
		case 1:
			n := 1 + r.IntN(8)
			for range n {
				b[2*ps+r.IntN(len(b)-2*ps)] ^= byte(1 + r.IntN(255))
			}
			what = fmt.Sprintf("%d bytes changed", n)
		case 2:
			p := 2 + r.IntN(pages-2)
			for i := p * ps; i < p*ps+pageHeaderSize+8*elementSize; i++ {
				b[i] = byte(r.Uint32())
			}
			what = fmt.Sprintf("garbage header and elements on page %d", p)
		case 3:
			n := r.IntN(len(b))
			b = b[:n]
			what = fmt.Sprintf("cut at %d bytes", n)
		case 4:
			p := r.IntN(2)
			for range 1 + r.IntN(4) {
				b[p*ps+r.IntN(pageHeaderSize+metaSize)] ^= byte(1 + r.IntN(255))
			}
			what = fmt.Sprintf("meta page %d changed", p)
		}
		path := writeFile(t, b)
		s, err := OpenWith(path, Options{NoSync: true, Timeout: 100 * time.Millisecond})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("round %d, %s: Open: %v, want ErrCorrupt", round, what, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Errorf("round %d, %s: the file was changed", round, what)
			}
			continue
		}
		opened++
		// Damage in values (messages, records) is not seen on opening:
		// the store must still work around it.
		if _, err := s.Stats(ctx); err != nil {
			t.Errorf("round %d, %s: Stats: %v", round, what, err)
		}
		jobs, _, err := s.List(ctx, queue.ListRequest{Limit: storeJobs})
		if err != nil {
			t.Errorf("round %d, %s: List: %v", round, what, err)
		}
		for _, j := range jobs {
			if _, err := s.Get(ctx, j.ID); err != nil && !errors.Is(err, queue.ErrCorrupt) {
				t.Errorf("round %d, %s: Get %s: %v", round, what, j.ID, err)
			}
		}
		if _, err := s.Claim(ctx, queue.ClaimRequest{Owner: "x", Max: 100, Now: t0.Add(time.Hour), Lease: time.Minute}); err != nil {
			t.Errorf("round %d, %s: Claim: %v", round, what, err)
		}
		s.Close()
	}
	t.Logf("%d of %d damaged files opened", opened, rounds)
}

// The check leaves good files alone and opens them as before.
func TestOpenGoodFileUnchanged(t *testing.T) {
	good := writeStore(t, storeJobs)
	path := writeFile(t, good)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := checkLayout(path, f); err != nil {
		t.Fatalf("checkLayout of a good file: %v", err)
	}
	s := open(t, path)
	if st, _ := s.Stats(context.Background()); st.Queued+st.Held+st.Active != storeJobs {
		t.Fatalf("Stats after reopen: %+v", st)
	}
}
