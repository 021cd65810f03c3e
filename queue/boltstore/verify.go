package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// ErrCorrupt: the file is not a usable queue: empty, truncated, damaged,
// or not a bbolt file at all. Open and OpenWith return it, wrapped with
// the path and what is wrong; match it with errors.Is. The file is left as
// it was: see the package documentation for what to do with it.
//
// It is not queue.ErrCorrupt, on purpose. queue.ErrCorrupt marks one
// record that cannot be decoded (a *queue.CorruptError naming the job,
// returned by Get and Set): the rest of the queue keeps working and the job
// can be cancelled. ErrCorrupt means the file as a whole cannot be trusted,
// and no Store is returned. An error never matches both.
var ErrCorrupt = errors.New("boltstore: corrupt file")

// corrupt returns an error that matches ErrCorrupt.
func corrupt(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, fmt.Sprintf(format, args...))
}

// safely runs fn, which reads the memory-mapped file through bbolt, and
// turns a panic into an error that matches ErrCorrupt. bbolt trusts the
// file: a damaged page fails one of its assertions (a panic) or makes it
// read an address past the end of the file or the mapping (a fault, which
// kills the process unless debug.SetPanicOnFault makes it a panic of this
// goroutine). SetPanicOnFault is per goroutine, so this only covers work
// done in the calling goroutine; the previous setting is restored.
func safely(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if f, ok := r.(interface{ Addr() uintptr }); ok {
				err = corrupt(path, "memory fault at %#x reading the mapped file", f.Addr())
				return
			}
			err = corrupt(path, "reading the file panicked: %v", r)
		}
	}()
	return fn()
}

// openBolt runs bolt.Open with o inside safely, and returns the file
// handle bbolt opened. If bolt.Open panics, the handle is closed, which
// releases the file's lock (its mapping, if any, stays).
func openBolt(path string, o *bolt.Options, db **bolt.DB) (*os.File, error) {
	var f *os.File
	o.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, mode)
		return f, err
	}
	err := safely(path, func() error {
		var err error
		*db, err = bolt.Open(path, 0o600, o)
		return err
	})
	if err != nil && *db == nil && f != nil && errors.Is(err, ErrCorrupt) {
		f.Close()
	}
	return f, err
}

// boltOpenErr classifies an error from bolt.Open.
func boltOpenErr(path string, err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, bolterr.ErrTimeout):
		return fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, timeout)
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrChecksum),
		errors.Is(err, bolterr.ErrVersionMismatch):
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return fmt.Errorf("boltstore: open %s: %w", path, err)
}

// checkFile checks an existing queue file before bbolt opens it for
// writing, and leaves it unchanged.
//
// The check is written here by hand because bbolt has none that is safe
// against the damage it is meant to find. Opening a file for writing with
// NoFreelistSync (as OpenWith does) makes bbolt walk every page of the file
// to rebuild its free list, in a goroutine of its own: a zeroed or
// truncated page there fails an assertion or faults in that goroutine,
// which no recover in ours can catch, and the process dies. Tx.Check walks
// in a goroutine too, and starts the same free-list walk. So the layout of
// the file is checked here with plain reads (no mapping, no unsafe): the
// meta pages, the file's size, and every page the walk will reach, with
// the same conditions that bbolt's walk asserts or reports.
//
// bbolt takes a shared lock for a read-only open, so the check runs while
// no other process can write the file (which would make its pages change
// under the check); a writer holding the file gives ErrLocked, as before.
func checkFile(path string, size int64, timeout time.Duration) error {
	// A queue file is not empty: bbolt writes its first pages in the call
	// that creates the file (an empty file is seen only for the instant
	// between the two, or after a crash in it). An empty file is one whose
	// contents were lost, and bbolt would make it a new, empty queue.
	if size == 0 {
		return corrupt(path, "the file is empty (0 bytes)")
	}
	ro := &bolt.Options{ReadOnly: true, Timeout: timeout}
	var db *bolt.DB
	f, err := openBolt(path, ro, &db)
	if err != nil {
		if errors.Is(err, bolterr.ErrTimeout) || errors.Is(err, ErrCorrupt) {
			return boltOpenErr(path, err, timeout)
		}
		// bbolt refused the file: say why if it is damage.
		if r, oerr := os.Open(path); oerr == nil {
			cerr := checkLayout(path, r)
			r.Close()
			if errors.Is(cerr, ErrCorrupt) {
				return cerr
			}
		}
		return boltOpenErr(path, err, timeout)
	}
	defer db.Close()
	return checkLayout(path, f)
}

// bbolt's file layout (go.etcd.io/bbolt/internal/common), in the byte order
// of the machine that wrote it. A page starts with a 16-byte header: id
// uint64, flags uint16, count uint16, overflow uint32 (the pages that follow
// it as part of it). Pages 0 and 1 hold a meta each, written in turn.
const (
	pageHeaderSize   = 16
	metaSize         = 64 // magic, version, pageSize, flags uint32; root, sequence, freelist, pgid, txid, checksum uint64
	metaChecksumOff  = 56 // FNV-64a of the meta's bytes before it
	elementSize      = 16 // branch: pos, ksize uint32, pgid uint64; leaf: flags, pos, ksize, vsize uint32
	bucketHeaderSize = 16 // root pgid, sequence uint64; root 0: an inline page follows

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	// bbolt looks for the second meta at these page sizes (1 KB to 16 MB).
	minPageSize = 1 << 10
	maxPageSize = 1 << 24

	// maxDepth bounds nested pages and buckets; a B+tree of 2^64 pages
	// with two keys a page is 64 levels deep.
	maxDepth = 256
)

var ne = binary.NativeEndian

type meta struct {
	pageSize                   uint64
	root, freelist, pgid, txid uint64
}

// readMeta reads the meta of the page at off and validates it as bbolt
// does: magic, version and checksum.
func readMeta(r io.ReaderAt, off int64) (meta, error) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return meta{}, fmt.Errorf("unreadable (%v)", err)
	}
	m := b[pageHeaderSize:]
	if ne.Uint32(m[0:]) != boltMagic {
		return meta{}, fmt.Errorf("bad magic %#x", ne.Uint32(m[0:]))
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("unsupported version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumOff])
	if ne.Uint64(m[metaChecksumOff:]) != h.Sum64() {
		return meta{}, errors.New("bad checksum")
	}
	return meta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

// checkLayout checks the file read through r: its size, its meta pages,
// and the pages of the meta that bbolt will use.
func checkLayout(path string, r *os.File) error {
	fi, err := r.Stat()
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	size := uint64(fi.Size())
	if size == 0 {
		return corrupt(path, "the file is empty (0 bytes)")
	}
	if size < 2*minPageSize {
		return corrupt(path, "%d bytes, too short for two meta pages", size)
	}
	// The page size is in the metas, and page 1 starts one page in. If
	// page 0 is damaged, look for page 1 where bbolt does.
	m0, err0 := readMeta(r, 0)
	var m1 meta
	err1 := errors.New("none found at page sizes 1 KB to 16 MB")
	ps := m0.pageSize
	if err0 == nil {
		if ps >= minPageSize && ps <= maxPageSize {
			m1, err1 = readMeta(r, int64(ps))
		}
	} else {
		for try := uint64(minPageSize); try <= maxPageSize && try+pageHeaderSize+metaSize <= size; try <<= 1 {
			if m, err := readMeta(r, int64(try)); err == nil && m.pageSize == try {
				m1, err1, ps = m, nil, try
				break
			}
		}
	}
	// bbolt uses the valid meta with the higher transaction id.
	var m meta
	switch {
	case err0 != nil && err1 != nil:
		return corrupt(path, "no valid meta page (page 0: %v; page 1: %v)", err0, err1)
	case err1 != nil || (err0 == nil && m0.txid >= m1.txid):
		m = m0
	default:
		m = m1
	}
	switch {
	case m.pageSize != ps || ps < minPageSize || ps > maxPageSize:
		return corrupt(path, "meta page of transaction %d: page size %d", m.txid, m.pageSize)
	case m.root < 2 || m.root >= m.pgid:
		return corrupt(path, "meta page of transaction %d: root page %d outside pages 2 to %d", m.txid, m.root, m.pgid)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return corrupt(path, "meta page of transaction %d: free list page %d outside pages 2 to %d", m.txid, m.freelist, m.pgid)
	case size%ps != 0:
		return corrupt(path, "%d bytes, not a whole number of %d-byte pages", size, ps)
	case size < 2*ps:
		return corrupt(path, "%d bytes, shorter than two %d-byte pages", size, ps)
	case m.pgid > size/ps:
		return corrupt(path, "truncated: %d bytes hold %d pages, the meta page says %d are in use", size, size/ps, m.pgid)
	}
	c := &checker{path: path, r: r, ps: ps, hwm: m.pgid, seen: make([]uint64, (m.pgid+63)/64)}
	if err := c.tree(m.root, 0, 0, nil, nil, 0); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		return c.freelist(m.freelist)
	}
	return nil
}

// checker walks the pages reachable from a meta, reading each once.
type checker struct {
	path string
	r    io.ReaderAt
	ps   uint64   // page size
	hwm  uint64   // pages in use: ids below it
	seen []uint64 // bit set of the pages reached
	bufs [][]byte // a buffer per depth, reused
}

func (c *checker) bad(format string, args ...any) error {
	return corrupt(c.path, format, args...)
}

// mark records that pages id to id+overflow were reached.
func (c *checker) mark(id, overflow uint64) error {
	if id < 2 || id >= c.hwm || overflow >= c.hwm-id {
		return c.bad("page %d (+%d) outside pages 2 to %d", id, overflow, c.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		if c.seen[p/64]&(1<<(p%64)) != 0 {
			return c.bad("page %d reached twice", p)
		}
		c.seen[p/64] |= 1 << (p % 64)
	}
	return nil
}

// read returns the first n bytes of page id, in the buffer of depth.
func (c *checker) read(id, n uint64, depth int) ([]byte, error) {
	for len(c.bufs) <= depth {
		c.bufs = append(c.bufs, nil)
	}
	b := c.bufs[depth]
	if uint64(cap(b)) < n {
		b = make([]byte, n)
		c.bufs[depth] = b
	}
	b = b[:n]
	if _, err := c.r.ReadAt(b, int64(id*c.ps)); err != nil {
		return nil, c.bad("page %d: unreadable (%v)", id, err)
	}
	return b, nil
}

// header returns a page's id, flags, element count and overflow.
func header(p []byte) (id uint64, flags uint16, count int, overflow uint64) {
	return ne.Uint64(p[0:]), ne.Uint16(p[8:]), int(ne.Uint16(p[10:])), uint64(ne.Uint32(p[12:]))
}

// ref names what refers to a page, for the tools that repair a file:
// element elem of page from, or (from 0) the meta page.
func ref(from uint64, elem int) string {
	if from == 0 {
		return "the root, in the meta page"
	}
	return fmt.Sprintf("element %d of page %d", elem, from)
}

// tree checks the branch or leaf page id, referred to by element elem of
// page from, and the pages under it; its keys must be in [lo, hi) (nil:
// unbounded).
func (c *checker) tree(id, from uint64, elem int, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return c.bad("page %d (%s): more than %d levels of pages and buckets", id, ref(from, elem), maxDepth)
	}
	if id < 2 || id >= c.hwm {
		return c.bad("page %d (%s) is outside pages 2 to %d", id, ref(from, elem), c.hwm)
	}
	p, err := c.read(id, c.ps, depth)
	if err != nil {
		return err
	}
	pid, flags, count, overflow := header(p)
	if pid != id {
		return c.bad("page %d (%s): its header says page %d", id, ref(from, elem), pid)
	}
	if flags != branchPageFlag && flags != leafPageFlag {
		return c.bad("page %d (%s): flags %#x, not a branch or leaf page", id, ref(from, elem), flags)
	}
	if err := c.mark(id, overflow); err != nil {
		return err
	}
	span := (overflow + 1) * c.ps
	elems := uint64(pageHeaderSize + count*elementSize)
	if elems > span {
		return c.bad("page %d (%s): %d elements do not fit in %d bytes", id, ref(from, elem), count, span)
	}
	if elems > uint64(len(p)) {
		if p, err = c.read(id, elems, depth); err != nil {
			return err
		}
	}
	branch := flags == branchPageFlag
	if branch && count == 0 {
		return c.bad("page %d (%s): a branch page without elements", id, ref(from, elem))
	}
	// Read as far as the last key (and bucket value), not the values.
	need, err := c.bounds(p, count, branch, span, id)
	if err != nil {
		return err
	}
	if need > uint64(len(p)) {
		if p, err = c.read(id, need, depth); err != nil {
			return err
		}
	}
	return c.elements(p, count, branch, lo, hi, id, depth)
}

// element returns element i of page p: its key's offset and length, and
// for a leaf its flags and value length, or for a branch its child page.
func element(p []byte, i int, branch bool) (koff, klen, vlen uint64, flags uint32, child uint64) {
	e := p[pageHeaderSize+i*elementSize:]
	base := uint64(pageHeaderSize + i*elementSize) // pos counts from the element
	if branch {
		return base + uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:])), 0, 0, ne.Uint64(e[8:])
	}
	return base + uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:])), ne.Uint32(e[0:]), 0
}

// bounds checks that every element of page p lies within span bytes and
// returns how many bytes hold its keys and bucket values.
func (c *checker) bounds(p []byte, count int, branch bool, span, id uint64) (uint64, error) {
	need := uint64(pageHeaderSize + count*elementSize)
	for i := range count {
		koff, klen, vlen, flags, _ := element(p, i, branch)
		if klen == 0 {
			return 0, c.bad("page %d: element %d has an empty key", id, i)
		}
		if koff+klen+vlen > span {
			return 0, c.bad("page %d: element %d ends at byte %d of %d", id, i, koff+klen+vlen, span)
		}
		need = max(need, koff+klen)
		if flags&bucketLeafFlag != 0 {
			need = max(need, koff+klen+vlen)
		}
	}
	return need, nil
}

// elements checks the key order of page p and what its elements lead to:
// child pages, buckets.
func (c *checker) elements(p []byte, count int, branch bool, lo, hi []byte, id uint64, depth int) error {
	var prev []byte
	for i := range count {
		koff, klen, vlen, flags, child := element(p, i, branch)
		key := p[koff : koff+klen]
		switch {
		case i == 0 && lo != nil && bytes.Compare(key, lo) < 0,
			i > 0 && bytes.Compare(key, prev) <= 0,
			hi != nil && bytes.Compare(key, hi) >= 0:
			return c.bad("page %d: key %d out of order", id, i)
		}
		prev = key
		if branch {
			next := hi
			if i+1 < count {
				nkoff, nklen, _, _, _ := element(p, i+1, true)
				next = p[nkoff : nkoff+nklen]
			}
			if err := c.tree(child, id, i, key, next, depth+1); err != nil {
				return err
			}
			continue
		}
		if flags&bucketLeafFlag != 0 {
			if err := c.bucket(p[koff+klen:koff+klen+vlen], id, i, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucket checks the value of element elem of page id, a bucket: its root
// page, or its inline page.
func (c *checker) bucket(v []byte, id uint64, elem int, depth int) error {
	if len(v) < bucketHeaderSize {
		return c.bad("page %d: a bucket value of %d bytes", id, len(v))
	}
	if root := ne.Uint64(v); root != 0 {
		return c.tree(root, id, elem, nil, nil, depth)
	}
	p := v[bucketHeaderSize:]
	if len(p) < pageHeaderSize {
		return c.bad("page %d: an inline bucket of %d bytes", id, len(v))
	}
	_, flags, count, _ := header(p)
	if flags != leafPageFlag {
		return c.bad("page %d: an inline bucket with flags %#x", id, flags)
	}
	if uint64(pageHeaderSize+count*elementSize) > uint64(len(p)) {
		return c.bad("page %d: an inline bucket's %d elements do not fit in %d bytes", id, count, len(p))
	}
	if _, err := c.bounds(p, count, false, uint64(len(p)), id); err != nil {
		return err
	}
	if depth > maxDepth {
		return c.bad("page %d: more than %d levels of pages and buckets", id, maxDepth)
	}
	return c.elements(p, count, false, nil, nil, id, depth)
}

// freelist checks a stored free list: page ids in use and not reached.
func (c *checker) freelist(id uint64) error {
	p, err := c.read(id, c.ps, 0)
	if err != nil {
		return err
	}
	pid, flags, count, overflow := header(p)
	if pid != id || flags != freelistPageFlag {
		return c.bad("free list page %d: header says page %d, flags %#x", id, pid, flags)
	}
	if err := c.mark(id, overflow); err != nil {
		return err
	}
	start, n := uint64(pageHeaderSize), uint64(count)
	if count == 0xFFFF { // the count is in the first element
		start, n = pageHeaderSize+8, ne.Uint64(p[pageHeaderSize:])
	}
	span := (overflow + 1) * c.ps
	if n > (span-start)/8 {
		return c.bad("free list page %d: %d ids do not fit in %d bytes", id, n, span)
	}
	if p, err = c.read(id, start+n*8, 0); err != nil {
		return err
	}
	for i := range n {
		f := ne.Uint64(p[start+i*8:])
		if f < 2 || f >= c.hwm || c.seen[f/64]&(1<<(f%64)) != 0 {
			return c.bad("free list page %d: page %d is not free", id, f)
		}
	}
	return nil
}

// verify runs over the opened file before anything is written to it: the
// store's buckets must be buckets, and the index keys that Claim and Open
// slice must have their shape (bbolt keeps no checksum of its pages, so a
// damaged byte in a key goes unnoticed by the page checks). It reads every
// key of every bucket, not the values: about 75 ms for a million jobs.
func (s *Store) verify() error {
	return s.db.View(func(btx *bolt.Tx) error {
		for _, name := range allBuckets {
			b := btx.Bucket(name)
			if b == nil {
				if k, _ := btx.Cursor().Seek(name); bytes.Equal(k, name) {
					return corrupt(s.path, "%s is not a bucket", name)
				}
				continue // created by OpenWith
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if err := keyShape(name, k, v); err != nil {
					return corrupt(s.path, "bucket %s, key %q: %v", name, k, err)
				}
			}
		}
		return nil
	})
}

// keyShape checks a key (and value) of an index bucket.
func keyShape(bucket, k, v []byte) error {
	switch string(bucket) {
	case string(bDue):
		if i := indexByte(k, 0); i < 0 || len(k)-i-1 < 8 {
			return errors.New("not key 0x00 due(8) id")
		}
	case string(bHeads):
		if len(k) < 8 {
			return errors.New("not due(8) key")
		}
	case string(bHeadOf):
		if len(v) != 8 {
			return fmt.Errorf("a value of %d bytes, not 8", len(v))
		}
	case string(bLeased):
		if indexByte(k, 0) < 0 {
			return errors.New("not key 0x00 id")
		}
	}
	return nil
}
