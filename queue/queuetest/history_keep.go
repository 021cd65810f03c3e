package queuetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testHistRoundTrip: every field of a record, its entries and their notes
// comes back from Record and Records as it was kept; so do a record with
// an ID alone and one with one bare entry.
func testHistRoundTrip(t testing.TB, s queue.HistoryStore) {
	full := hFull("full")
	bare := queue.Record{ID: "bare"}
	one := queue.Record{ID: "one", Recipients: []queue.RecipientRecord{{Addr: "solo@x.example"}}}
	long := hRec(1, strings.Repeat("l", 900)+"@x.example")
	long.ID = "long"
	long.Subject = strings.Repeat("subject ✓ ", 3000)
	long.Recipients[0].Reply = strings.Repeat("550 5.7.1 go away\r\n", 500)
	long.Metadata = map[string]string{}
	for i := range 200 {
		long.Metadata[hID(i)] = strings.Repeat("v", i)
	}
	hKeep(t, s, full, bare, one, long)
	for _, want := range []queue.Record{full, bare, one, long} {
		hCheckOne(t, "Record", hGet(t, s, want.ID), want)
	}
	hCheck(t, "Records", hAll(t, s, queue.RecordFilter{}), hNewestFirst(full, bare, one, long))
	if err := s.Keep(context.Background()); err != nil {
		t.Fatalf("Keep with no records: %v", err)
	}
	hCheck(t, "Records after Keep with no records", hAll(t, s, queue.RecordFilter{}), hNewestFirst(full, bare, one, long))
}

// testHistMerge: Keep merges outcome by outcome. A non-zero field
// replaces the stored one (Metadata as a whole), a zero one leaves it; an
// entry replaces the stored entry for its address, matched without regard
// to ASCII case, keeping its place and notes and appending its own; a new
// address is appended; the other entries stay.
func testHistMerge(t testing.TB, s queue.HistoryStore) {
	n1 := queue.Note{Type: "opened", Time: hAt(1)}
	n2 := queue.Note{Type: "bounced", Time: hAt(2), Detail: "5.1.1"}
	first := hRec(1, "ann@x.example", "bob@x.example")
	first.Campaign, first.List = "c1", "news"
	first.Metadata = map[string]string{"a": "1", "b": "2"}
	first.Recipients[1].Status, first.Recipients[1].Notes = "expired", []queue.Note{n1}
	hKeep(t, s, first)
	want := hClone(first)

	// bob finishes later: his entry, in other case, replaces the first
	// one; Subject is not given and stays; Campaign changes.
	bob := queue.RecipientRecord{Addr: "BOB@x.example", Status: "bounced", Code: 550, Enhanced: "5.1.1",
		Reply: "550 5.1.1 no such user", Time: hAt(3), Attempts: 4, Notes: []queue.Note{n2}}
	second := queue.Record{ID: first.ID, Campaign: "c2", Updated: hAt(3), Recipients: []queue.RecipientRecord{bob}}
	hKeep(t, s, second)
	want.Campaign, want.Updated = "c2", hAt(3)
	want.Recipients[1] = bob
	want.Recipients[1].Notes = []queue.Note{n1, n2}
	hCheckOne(t, "after merging a later outcome for bob (in other case)", hGet(t, s, first.ID), want)

	// A third recipient is appended; Metadata is replaced as a whole.
	carl := hEntry("carl@x.example")
	third := queue.Record{ID: first.ID, Metadata: map[string]string{"c": "3"}, Recipients: []queue.RecipientRecord{carl}}
	hKeep(t, s, third)
	want.Metadata = map[string]string{"c": "3"}
	want.Recipients = append(want.Recipients, carl)
	hCheckOne(t, "after merging a new recipient and new metadata", hGet(t, s, first.ID), want)

	// A record with the ID alone changes nothing.
	hKeep(t, s, queue.Record{ID: first.ID})
	hCheckOne(t, "after merging a record with only its ID", hGet(t, s, first.ID), want)

	// Every field given replaces its value.
	every := hFull(first.ID)
	every.Recipients = every.Recipients[1:] // bob@y.example, a new address
	hKeep(t, s, every)
	want.MessageID, want.From, want.Subject = every.MessageID, every.From, every.Subject
	want.Campaign, want.List, want.Metadata = every.Campaign, every.List, every.Metadata
	want.Created, want.Updated = every.Created, every.Updated
	want.Recipients = append(want.Recipients, every.Recipients[0])
	hCheckOne(t, "after merging a record with every field set", hGet(t, s, first.ID), want)
	hCheck(t, "Records after the merges", hAll(t, s, queue.RecordFilter{}), []queue.Record{want})
}

// testHistMergeInOneCall: records with one ID in one call are merged in
// order, and two entries for one address in one record become one, the
// later winning and the notes of both kept.
func testHistMergeInOneCall(t testing.TB, s queue.HistoryStore) {
	a := hRec(1, "ann@x.example")
	b := queue.Record{ID: a.ID, Subject: "second", Recipients: []queue.RecipientRecord{hEntry("bob@x.example")}}
	c := queue.Record{ID: a.ID, Subject: "third"}
	hKeep(t, s, a, b, c)
	want := hClone(a)
	want.Subject = "third"
	want.Recipients = append(want.Recipients, hEntry("bob@x.example"))
	hCheckOne(t, "after one call with three records of one ID", hGet(t, s, a.ID), want)

	n1, n2 := queue.Note{Type: "first", Time: hAt(1)}, queue.Note{Type: "second", Time: hAt(2)}
	dup := hRec(2, "dup@x.example", "other@x.example", "DUP@x.example")
	dup.Recipients[0].Notes = []queue.Note{n1}
	dup.Recipients[2].Status, dup.Recipients[2].Notes = "bounced", []queue.Note{n2}
	hKeep(t, s, dup)
	want = hClone(dup)
	want.Recipients = want.Recipients[:2]
	want.Recipients[0] = dup.Recipients[2]
	want.Recipients[0].Notes = []queue.Note{n1, n2}
	hCheckOne(t, "a new record with two entries for one address", hGet(t, s, dup.ID), want)
	got, _, err := s.Records(context.Background(), queue.RecordFilter{Recipient: "dup@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	hCheck(t, "Records of the address given twice", got, []queue.Record{hOnly(want, "dup@x.example")})
}

// testHistInvalid: a record without an ID, an entry without an address, a
// NUL byte or invalid UTF-8 in a string field are refused with
// ErrInvalid, and a call with one such record among good ones stores none
// of them and changes no stored record.
func testHistInvalid(t testing.TB, s queue.HistoryStore) {
	ctx := context.Background()
	kept := hRec(1, "kept@x.example")
	hKeep(t, s, kept)
	good := hRec(2, "good@x.example")
	change := queue.Record{ID: kept.ID, Subject: "changed", Recipients: []queue.RecipientRecord{hEntry("new@x.example")}}
	bad := map[string]func(r *queue.Record){
		"no ID":                 func(r *queue.Record) { r.ID = "" },
		"entry without Addr":    func(r *queue.Record) { r.Recipients = append(r.Recipients, queue.RecipientRecord{Status: "delivered"}) },
		"NUL in the ID":         func(r *queue.Record) { r.ID = "x\x00y" },
		"NUL in Subject":        func(r *queue.Record) { r.Subject = "a\x00b" },
		"invalid UTF-8 From":    func(r *queue.Record) { r.From = "\xff@x.example" },
		"NUL in a Metadata key": func(r *queue.Record) { r.Metadata = map[string]string{"k\x00": "v"} },
		"bad Metadata value":    func(r *queue.Record) { r.Metadata = map[string]string{"k": "\xc3"} },
		"NUL in an Addr":        func(r *queue.Record) { r.Recipients[0].Addr = "a\x00@x.example" },
		"NUL in Reply":          func(r *queue.Record) { r.Recipients[0].Reply = "550\x00" },
		"NUL in Enhanced":       func(r *queue.Record) { r.Recipients[0].Enhanced = "5.\x00" },
		"invalid UTF-8 Source":  func(r *queue.Record) { r.Recipients[0].Source = "\xfe" },
		"NUL in a note":         func(r *queue.Record) { r.Recipients[0].Notes = []queue.Note{{Type: "clicked", Detail: "\x00"}} },
	}
	for name, spoil := range bad {
		r := hRec(3, "bad@x.example")
		spoil(&r)
		for _, batch := range [][]queue.Record{{r}, {good, r}, {r, change}, {change, good, r}} {
			if err := s.Keep(ctx, batch...); !errors.Is(err, queue.ErrInvalid) {
				t.Fatalf("Keep of a record with %s among %d: %v, want ErrInvalid", name, len(batch), err)
			}
		}
	}
	hCheck(t, "Records after refused calls (nothing may be stored or changed)", hAll(t, s, queue.RecordFilter{}), []queue.Record{kept})
	for _, addr := range []string{"good@x.example", "new@x.example", "bad@x.example"} {
		hCheck(t, "Records of "+addr+" after refused calls", hAll(t, s, queue.RecordFilter{Recipient: addr}), nil)
	}
	for _, n := range []queue.Note{{Type: "a\x00"}, {Type: "clicked", Detail: "\xff"}, {Type: "opened", UserAgent: "\x00"}} {
		if err := s.Note(ctx, kept.ID, "kept@x.example", n); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Note(%+v): %v, want ErrInvalid", n, err)
		}
	}
	hCheckOne(t, "after refused notes", hGet(t, s, kept.ID), kept)
}

// testHistNotFound: Record and Note of a missing ID, and Note of a
// recipient the record does not have, give ErrNotFound and change
// nothing.
func testHistNotFound(t testing.TB, s queue.HistoryStore) {
	ctx := context.Background()
	if _, err := s.Record(ctx, "missing"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Record of a missing ID in an empty store: %v, want ErrNotFound", err)
	}
	r := hRec(1, "ann@x.example")
	hKeep(t, s, r)
	for _, id := range []string{"missing", "", strings.ToUpper(r.ID), r.ID + "x", r.ID[:len(r.ID)-1]} {
		if _, err := s.Record(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Record(%q): %v, want ErrNotFound", id, err)
		}
	}
	n := queue.Note{Type: "opened", Time: hAt(2)}
	if err := s.Note(ctx, "missing", "ann@x.example", n); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Note on a missing record: %v, want ErrNotFound", err)
	}
	for _, addr := range []string{"bob@x.example", "ann@x.exampl", "ann@x.example.org"} {
		if err := s.Note(ctx, r.ID, addr, n); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Note(%q) on a record without that recipient: %v, want ErrNotFound", addr, err)
		}
	}
	hCheckOne(t, "after the failed calls", hGet(t, s, r.ID), r)
}

// testHistCopies: a store keeps copies: changing a record after Keep, or
// what Record or Records returned, changes nothing stored.
func testHistCopies(t testing.TB, s queue.HistoryStore) {
	r := hFull("copy")
	want := hClone(r)
	hKeep(t, s, r)
	r.Metadata["user"] = "changed"
	r.Recipients[0].Status = "changed"
	r.Recipients[0].Notes[0].Type = "changed"
	hCheckOne(t, "after changing the record given to Keep", hGet(t, s, want.ID), want)

	got := hGet(t, s, want.ID)
	got.Metadata["user"] = "changed"
	got.Recipients[0].Status = "changed"
	got.Recipients[0].Notes[0].Type = "changed"
	got.Recipients = append(got.Recipients[:1], got.Recipients[0])
	hCheckOne(t, "after changing what Record returned", hGet(t, s, want.ID), want)

	for _, f := range []queue.RecordFilter{{}, {Recipient: "ann@x.example"}} {
		list := hAll(t, s, f)
		list[0].Metadata["user"] = "changed"
		list[0].Recipients[0].Notes[0].Detail = "changed"
		list[0].Recipients[0].Addr = "changed@x.example"
	}
	hCheckOne(t, "after changing what Records returned", hGet(t, s, want.ID), want)
	hNote(t, s, want.ID, "ann@x.example", queue.Note{Type: "later", Time: hAt(5)})
	if len(r.Recipients[0].Notes) != 2 || len(got.Recipients[0].Notes) != 2 {
		t.Fatalf("Note changed a record a caller holds")
	}
}

// testHistPrecision: times with nanoseconds come back exact, truncated or
// rounded to the microsecond; zero times stay zero; a time zone other than
// UTC changes nothing.
func testHistPrecision(t testing.TB, s queue.HistoryStore) {
	ns := 123_456_789 * time.Nanosecond
	east, west := time.FixedZone("UTC+13", 13*3600), time.FixedZone("UTC-7", -7*3600)
	r := hRec(1, "ann@x.example", "bob@x.example")
	r.Created, r.Updated = hT0.Add(ns), hT0.Add(ns+500*time.Nanosecond).In(east)
	r.Recipients[0].Time = hT0.Add(999_999_999).In(west)
	r.Recipients[0].Notes = []queue.Note{{Type: "opened", Time: time.Date(1999, 12, 31, 23, 59, 59, 999_999_500, west)}}
	r.Recipients[1].Time = time.Time{}
	r.Recipients[1].Notes = []queue.Note{{Type: "zero"}}
	z := hRec(2, "zero@x.example")
	z.Created, z.Updated, z.Recipients[0].Time = time.Time{}, time.Time{}, time.Time{}
	hKeep(t, s, r, z)
	for _, want := range []queue.Record{r, z} {
		got := hGet(t, s, want.ID)
		times := func(r *queue.Record) []*time.Time {
			out := []*time.Time{&r.Created, &r.Updated}
			for i := range r.Recipients {
				out = append(out, &r.Recipients[i].Time)
				for j := range r.Recipients[i].Notes {
					out = append(out, &r.Recipients[i].Notes[j].Time)
				}
			}
			return out
		}
		gt, wt := times(got), times(&want)
		if len(gt) != len(wt) {
			hCheckOne(t, "Record", got, want)
		}
		for i, g := range gt {
			w := *wt[i]
			ok := g.Equal(w) || g.Equal(w.Truncate(time.Microsecond)) || g.Equal(w.Round(time.Microsecond))
			if !ok || g.IsZero() != w.IsZero() {
				t.Errorf("%s: time %d, %s, read back as %s (zero: %v)", want.ID, i, w.Format(time.RFC3339Nano),
					g.Format(time.RFC3339Nano), g.IsZero())
			}
			*g = w
		}
		hCheckOne(t, "Record, times aside", got, want)
	}
}

// testHistNote: Note appends to the entry for the address, matched
// without regard to ASCII case, in the order of the calls, and changes
// nothing else (not Updated); a later Keep of that entry keeps the notes
// and appends its own; a Keep of another entry leaves them.
func testHistNote(t testing.TB, s queue.HistoryStore) {
	r := hRec(1, "Ann@X.example", "bob@x.example")
	r.Recipients[0].Notes = []queue.Note{{Type: "bounced", Time: hAt(1), Detail: "5.2.2"}}
	hKeep(t, s, r)
	want := hClone(r)
	notes := []queue.Note{
		{Type: "opened", Time: hAt(2), Machine: true, UserAgent: "Proxy", Client: "192.0.2.9"},
		{Type: "clicked", Time: hAt(3), Detail: "https://x.example/ü", UserAgent: "Browser", Client: "2001:db8::9"},
		{Type: "complained", Time: hAt(2), Detail: "abuse"}, // out of time order: kept in call order
	}
	for i, addr := range []string{"ann@x.example", "ANN@x.EXAMPLE", "Ann@X.example"} {
		hNote(t, s, r.ID, addr, notes[i])
		want.Recipients[0].Notes = append(want.Recipients[0].Notes, notes[i])
	}
	hNote(t, s, r.ID, "bob@x.example", queue.Note{Type: "unsubscribed", Time: hAt(4), Detail: "one-click news"})
	want.Recipients[1].Notes = []queue.Note{{Type: "unsubscribed", Time: hAt(4), Detail: "one-click news"}}
	hCheckOne(t, "after four notes", hGet(t, s, r.ID), want)

	// A later Keep of ann's entry (a bounce after delivery) and of a new
	// entry.
	later := queue.Record{ID: r.ID, Updated: hAt(5), Recipients: []queue.RecipientRecord{
		{Addr: "ann@x.example", Status: "bounced", Code: 550, Time: hAt(5), Notes: []queue.Note{{Type: "merged", Time: hAt(5)}}},
		hEntry("carl@x.example"),
	}}
	hKeep(t, s, later)
	ann := later.Recipients[0]
	ann.Notes = append(append([]queue.Note(nil), want.Recipients[0].Notes...), later.Recipients[0].Notes...)
	want.Updated = hAt(5)
	want.Recipients[0] = ann
	want.Recipients = append(want.Recipients, hEntry("carl@x.example"))
	hCheckOne(t, "after a Keep that merged ann's entry", hGet(t, s, r.ID), want)
	hNote(t, s, r.ID, "carl@x.example", queue.Note{Type: "opened", Time: hAt(6)})
	want.Recipients[2].Notes = []queue.Note{{Type: "opened", Time: hAt(6)}}
	hCheckOne(t, "after a note on the new entry", hGet(t, s, r.ID), want)
	got, _, err := s.Records(context.Background(), queue.RecordFilter{Recipient: "ANN@X.EXAMPLE"})
	if err != nil {
		t.Fatal(err)
	}
	hCheck(t, "Records of ann", got, []queue.Record{hOnly(want, "ann@x.example")})
}
