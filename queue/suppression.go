package queue

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// SuppressionStore keeps a suppression list: addresses that must not be
// mailed, for one list (topic) or for all mail. relay.Client consults it
// for every recipient before every attempt. Implementations must be safe
// for concurrent use, honour ctx, and keep what they return as durably as
// their queue does; queuetest.TestSuppressions checks them.
//
// Addresses are compared byte for byte: the caller normalises them
// (relay.Client lower-cases the domain, converts it to an A-label and, by
// default, lower-cases the local part), or passes keyed hashes in their
// place, so a store never needs to understand an address.
//
// Times are kept to at least the microsecond (a store documents any
// truncation). An entry that a store cannot decode is reported as a
// *CorruptSuppressionError by Suppressed and Suppressions, never skipped,
// so that mail is not sent to an address that may have opted out.
type SuppressionStore interface {
	// Suppress adds entries, or replaces the entry with the same Address
	// and Scope; of two entries with one key in the same call, the later
	// wins. Every entry needs an Address and a known Reason
	// (CheckSuppression); a store that cannot hold some bytes (a NUL, say)
	// refuses them too. Any invalid entry gives ErrInvalid and none of the
	// entries is stored. Created and Expires are stored as given, to the
	// store's precision.
	Suppress(ctx context.Context, entries ...Suppression) error

	// Unsuppress removes the entry for address in scope, reporting
	// whether there was one. Scope "" names the all-mail entry only. An
	// empty address gives ErrInvalid.
	Unsuppress(ctx context.Context, address, scope string) (bool, error)

	// Suppressed returns the entries, unexpired at now, that stop mail to
	// any of addresses in scope: those with that Scope and those with
	// Scope "" (all mail). One call serves a whole message. The result
	// has at most two entries per address, even if addresses repeats one,
	// in no particular order. An entry expires at its Expires: it does not
	// apply when now equals it. An address that could never be stored ("",
	// or bytes the store refuses) is not an error: it has no entry.
	Suppressed(ctx context.Context, scope string, addresses []string, now time.Time) ([]Suppression, error)

	// Suppressions lists entries in order of (Address, Scope), compared
	// byte by byte, after the cursor in f, at most f.Limit of them (0 →
	// 100), with the filters f sets. Expired entries are listed too, with
	// their Expires. A negative Limit or an unknown Reason gives
	// ErrInvalid (CheckSuppressionFilter).
	Suppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, error)
}

// Suppression is one entry of a suppression list.
type Suppression struct {
	// Address is the normalised address, or a keyed hash standing for it
	// (relay.SuppressionOptions.HashKey).
	Address string
	// Scope is the list or topic the entry stops; "" stops all mail.
	Scope string
	// Reason says why the address is suppressed.
	Reason SuppressReason
	// Source is what caused the entry: a message id, an event, "api".
	Source string
	// Created is when the entry was made.
	Created time.Time
	// Expires, when not zero, is when the entry stops applying.
	Expires time.Time
}

// Active reports whether the entry applies at now.
func (s *Suppression) Active(now time.Time) bool {
	return s.Expires.IsZero() || now.Before(s.Expires)
}

// SuppressReason says why an address is suppressed.
type SuppressReason int

// The reasons for a suppression.
const (
	Unsubscribed SuppressReason = iota + 1 // the recipient opted out (one-click, page, mailto)
	Complained                             // the recipient reported the mail as spam (ARF)
	HardBounced                            // the mailbox does not exist (5.1.1 and the like)
	Manual                                 // added by the application or an operator
)

var reasonNames = [...]string{Unsubscribed: "unsubscribed", Complained: "complained", HardBounced: "hard-bounced", Manual: "manual"}

// String returns "unsubscribed", "complained", "hard-bounced" or "manual".
func (r SuppressReason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("SuppressReason(%d)", int(r))
}

// Valid reports whether r is Unsubscribed, Complained, HardBounced or
// Manual.
func (r SuppressReason) Valid() bool { return r > 0 && int(r) < len(reasonNames) }

// MarshalText encodes the reason as its name.
func (r SuppressReason) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("%w: suppression reason %d", ErrInvalid, int(r))
	}
	return []byte(reasonNames[r]), nil
}

// UnmarshalText decodes a name written by MarshalText.
func (r *SuppressReason) UnmarshalText(b []byte) error {
	for i, n := range reasonNames {
		if i > 0 && n == string(b) {
			*r = SuppressReason(i)
			return nil
		}
	}
	return fmt.Errorf("%w: suppression reason %q", ErrInvalid, b)
}

// SuppressionFilter selects entries for SuppressionStore.Suppressions.
type SuppressionFilter struct {
	// AfterAddress and AfterScope are the cursor: list the entries after
	// (AfterAddress, AfterScope), the last entry of the previous page;
	// both empty start at the beginning.
	AfterAddress, AfterScope string
	// Address, when set, lists only that address's entries.
	Address string
	// Scope, when set, lists only entries of that scope; use AllMail for
	// the entries with Scope "".
	Scope string
	// AllMail lists only entries with Scope "" (Scope is then ignored).
	AllMail bool
	// Reason, when set, lists only entries with that reason.
	Reason SuppressReason
	// Limit caps the entries returned; 0 → 100.
	Limit int
}

// CheckSuppression validates an entry as Suppress must: a store calls it
// for each entry before storing any.
func CheckSuppression(s *Suppression) error {
	if s.Address == "" {
		return fmt.Errorf("%w: suppression without an address", ErrInvalid)
	}
	if !s.Reason.Valid() {
		return fmt.Errorf("%w: suppression of %q: reason %d", ErrInvalid, s.Address, int(s.Reason))
	}
	// Every store can keep these: no NUL (bbolt's key separator,
	// PostgreSQL's text) and valid UTF-8.
	for _, f := range []string{s.Address, s.Scope, s.Source} {
		if strings.IndexByte(f, 0) >= 0 || !utf8.ValidString(f) {
			return fmt.Errorf("%w: suppression of %q: a NUL byte or invalid UTF-8", ErrInvalid, s.Address)
		}
	}
	return nil
}
