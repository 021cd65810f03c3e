package mx

import (
	"errors"
	"fmt"
)

// Permanent conditions. A message for a domain that gives one of these
// errors will never be deliverable by retrying; IsPermanent reports true for
// them (and for anything that wraps them), and every other error is
// temporary.
var (
	// ErrNullMX: the domain publishes "MX 0 ." and accepts no mail
	// (RFC 7505 §3). There is no fallback to the domain's addresses.
	ErrNullMX = errors.New("mx: domain accepts no mail (null MX)")

	// ErrNoDomain: the name does not exist (NXDOMAIN).
	ErrNoDomain = errors.New("mx: no such domain")

	// ErrNoRecords: the name exists but has none of the records asked for,
	// e.g. a domain with neither MX nor A/AAAA records, or a host with no
	// address.
	ErrNoRecords = errors.New("mx: no records")

	// ErrInvalidName: the name is empty, too long (over 253 octets), has a
	// label over 63 octets, or is not a valid (internationalized) domain name.
	// The error is a *NameError.
	ErrInvalidName = errors.New("mx: invalid domain name")
)

// Temporary conditions.
var (
	// ErrCNAMELoop: a CNAME chain was longer than the resolver follows, or
	// looped. Recursive resolvers answer SERVFAIL for this, so it is
	// treated as temporary.
	ErrCNAMELoop = errors.New("mx: CNAME chain too long or looping")

	// ErrNoUsableMX: the domain has MX records but every target is an IP
	// literal or not a valid host name. It is a misconfiguration that its
	// owner may fix, so it is temporary.
	ErrNoUsableMX = errors.New("mx: no usable MX host")

	// ErrBadServer: an entry of Resolver.Servers is not "ip:port" or "ip",
	// or the system configuration could not be read. A local configuration
	// problem, so temporary.
	ErrBadServer = errors.New("mx: bad server address")
)

// NameError reports a name that cannot be looked up. It wraps
// ErrInvalidName.
type NameError struct {
	Name   string // as given
	Reason string // why it is not a valid domain name
}

// Error implements error.
func (e *NameError) Error() string {
	return fmt.Sprintf("mx: invalid domain name %q: %s", e.Name, e.Reason)
}

// Unwrap returns ErrInvalidName.
func (e *NameError) Unwrap() error { return ErrInvalidName }

// DNSError describes a failed lookup: which name and type, which server
// answered (if any), the response code or the transport error.
type DNSError struct {
	Name   string // the name queried, ASCII, absolute
	Type   string // "MX", "A", "AAAA", "TLSA", "TXT"
	Server string // "ip:port" of the last server tried, if any
	Rcode  string // "SERVFAIL", "REFUSED", "NXDOMAIN", ... or "" for a transport error
	// Err is the cause: ErrNoDomain, ErrNoRecords, ErrNullMX, ErrCNAMELoop,
	// a network error, a context error, ...
	Err error
	// IsTimeout is true when no server answered in time.
	IsTimeout bool
}

// Error implements error: "mx: lookup MX example.com. on 192.0.2.53:53: SERVFAIL".
func (e *DNSError) Error() string {
	s := "mx: lookup " + e.Type + " " + e.Name
	if e.Server != "" {
		s += " on " + e.Server
	}
	if e.Rcode != "" && e.Err == nil {
		return s + ": " + e.Rcode
	}
	if e.IsTimeout {
		return s + ": timeout: " + errString(e.Err)
	}
	return s + ": " + errString(e.Err)
}

func errString(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// Unwrap returns the cause.
func (e *DNSError) Unwrap() error { return e.Err }

// Timeout reports whether no server answered in time.
func (e *DNSError) Timeout() bool { return e.IsTimeout }

// Temporary reports whether the lookup may succeed if tried again: it is
// !IsPermanent(e). With Timeout it makes *DNSError a net.Error, for code
// that classifies lookup errors that way (go-msgauth's DKIM and DMARC
// lookups do).
func (e *DNSError) Temporary() bool { return !IsPermanent(e) }

// IsPermanent reports whether err says the lookup will never succeed:
// ErrNullMX, ErrNoDomain, ErrNoRecords or ErrInvalidName, or an error
// wrapping one. Any other non-nil error (SERVFAIL, REFUSED, a timeout, a
// network error, a CNAME loop, anything unknown) is temporary: retry later.
// It is the one way to classify lookup errors. IsPermanent(nil) is false.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrNullMX) || errors.Is(err, ErrNoDomain) ||
		errors.Is(err, ErrNoRecords) || errors.Is(err, ErrInvalidName)
}
