package relay

import (
	"bytes"
	"cmp"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/queue"
)

// Defaults for the Client fields whose zero value means "the default".
const (
	DefaultMaxParallelDomains = 8
	DefaultMaxMessageSize     = 64 << 20
)

// Client prepares and accounts for messages: it validates, signs,
// queues, reports events and keeps statistics, and hands each recipient
// domain's envelope to its Transport, by default a Direct transport to the
// recipients' MX servers. The zero value is ready to use; every field is
// optional. A Client is safe for concurrent use; do not change its fields
// after the first call.
//
// Hostname, Resolver, Port and AllowPrivateAddrs are shortcuts: they
// configure the default Direct transport, used when Transport is nil.
type Client struct {
	// Hostname is the name the default transport sends with EHLO (see
	// Direct.Hostname).
	Hostname string

	// Resolver finds MX hosts, addresses, TLSA records and MTA-STS
	// policies for the default transport. nil → mx.DefaultResolver.
	Resolver *mx.Resolver

	// Sources are local addresses to send from, each with its own EHLO
	// name; every message goes from one of them, chosen by weight unless
	// SendOptions or EnqueueOptions name one. Empty → the system chooses.
	Sources []Source

	// Signer, if set, DKIM-signs every message before it is sent.
	Signer *dkim.Signer

	// Port is the SMTP port the default transport dials on every MX host.
	// 0 → 25; tests use another.
	Port int

	// AllowPrivateAddrs lets the default transport dial MX addresses that
	// are loopback, private, link-local or otherwise not a public mail
	// server (see Direct.AllowPrivateAddrs). Keep it false in production.
	AllowPrivateAddrs bool

	// Store, if set, queues deferred recipients for retry: Send hands them
	// to it and Run delivers them. nil → no queue: Send reports deferrals
	// and Enqueue fails with ErrNoStore.
	Store queue.Store
	// Retry schedules the attempts of queued messages. nil →
	// queue.DefaultRetryPolicy(): 5, 10, 20, 40, 80 minutes, then every 2
	// hours, for 5 days.
	Retry queue.RetryPolicy
	// QueueWorkers caps the queued messages Run delivers at once. 0 →
	// DefaultQueueWorkers.
	QueueWorkers int
	// QueuePerDomain caps the queued messages for one recipient domain
	// that Run delivers at once, so that a big campaign to one domain
	// leaves workers for the others. 0 → twice the Direct transport's
	// Limits.MaxConnections (or DefaultMaxConnections), so that its
	// connections carry the next attempts while the last ones' outcomes
	// are committed, or queue.DefaultPerKey with another Transport;
	// negative → no cap.
	QueuePerDomain int

	// Suppressions, if set, is the suppression list: every recipient is
	// looked up in it before every attempt (Send, SendRaw, and each
	// attempt of a queued message, one lookup per message), and one on it
	// is not sent to: its status is Suppressed, with EventSuppressed, and
	// no connection is made for it. Unsubscribes through Handler and
	// bounces that say the mailbox does not exist (5.1.1, 5.1.2, 5.1.3,
	// 5.1.6, 5.1.10) are added to it; policy refusals (5.7.x) are not.
	// queue.MemoryStore, boltstore and pgstore implement it beside the
	// queue. nil → no suppression.
	Suppressions queue.SuppressionStore
	// Suppression tunes how addresses are matched and kept on the list.
	Suppression SuppressionOptions

	// PublicURL is the base URL at which the application serves Handler,
	// "https://example.org/mail"; list messages link to it. https, or
	// http on a loopback host for tests.
	PublicURL string
	// LinkKeys seal the links in list messages (each at least
	// MinLinkKeySize random bytes): the first makes new links, every one
	// opens them, so a key can be rotated by putting a new one first and
	// dropping the old one once its links no longer matter.
	LinkKeys [][]byte
	// Pages tune the unsubscribe and preferences pages.
	Pages Pages

	// BounceDomain, when set, is a domain whose MX points at the
	// application's ServeInbound (or at an MTA that hands its mail to
	// ProcessInbound). Every copy then goes out from a return path of its
	// own in that domain (VERP), "b<token>@BounceDomain", whose token
	// names the message and the recipient, signed with LinkKeys; where the
	// server offers DSN, the token is the ENVID too and every recipient
	// gets ORCPT (RFC 3461). Bounces, complaints and auto-replies that
	// come back are then matched, reported as events and fed to the
	// suppression list. Each recipient is sent in a transaction of its
	// own. List messages also get a mailto: unsubscribe address in the
	// domain. The domain needs an SPF record that allows the sending
	// addresses, since receivers check SPF on the envelope sender. Empty
	// → the From address is the envelope sender, and nothing comes back
	// to the application.
	BounceDomain string
	// Inbound tunes ServeInbound.
	Inbound InboundOptions

	// History, if set, keeps every message's record: each recipient's
	// final outcome (status, codes, category, MX host, TLS, source, time,
	// attempts) and what was heard of it later (bounces that came back,
	// complaints, unsubscribes, opens, clicks), for Retention. Read it
	// through the store: Record(id), Records with a filter (a recipient,
	// a campaign, a time range). queue.MemoryStore, boltstore and pgstore
	// implement it beside the queue. nil → nothing is kept after a
	// message is finished.
	History queue.HistoryStore
	// Retention is how long History keeps a record after its last outcome
	// (notes of later opens and clicks do not extend it);
	// Run removes older ones every hour (ExpireHistory). 0 →
	// DefaultRetention, 30 days.
	Retention time.Duration
	// Tracking tunes open and click tracking (SendOptions.Track).
	Tracking TrackingOptions
	// Review says which enqueued messages are held until an operator
	// approves them (Approve, Reject; the console's approvals page).
	Review ReviewOptions

	// MaxParallelDomains bounds how many recipient domains of one message
	// are delivered at once. 0 → DefaultMaxParallelDomains.
	MaxParallelDomains int
	// MaxMessageSize bounds the message Send and Enqueue write and SendRaw
	// reads, before signing; a larger one is ErrMessageTooLarge and is not
	// sent. 0 → DefaultMaxMessageSize.
	MaxMessageSize int64

	// Events, if set, is told of every state change of every message:
	// queued, attempt, delivered, deferred (with the next attempt),
	// bounced, expired. It is called from a goroutine of its own, one event
	// at a time, through a buffer of EventBuffer events; when the hook
	// falls behind that far, events are dropped (and counted in Stats)
	// rather than slowing delivery down.
	Events func(Event)
	// EventBuffer sizes the buffer in front of Events. 0 →
	// DefaultEventBuffer.
	EventBuffer int
	// Webhooks POST the events to HTTP endpoints, durably, while Run
	// runs (see WebhookOptions).
	Webhooks WebhookOptions
	// Alerts watch the rates, the MX hosts, the queue and the sending
	// domains' setup while Run runs (see AlertOptions).
	Alerts AlertOptions

	// Transport delivers each domain's envelope. nil → a Direct transport
	// (to the recipients' MX hosts) made from Hostname, Resolver, Port and
	// AllowPrivateAddrs; set those on the Transport instead
	// when it is given (setting both is a configuration error).
	Transport Transport

	// Logger receives structured records of each attempt. nil → silent.
	Logger *slog.Logger
	// Trace, if set, is told about each step; for metrics and tests.
	Trace *Trace

	tOnce  sync.Once
	direct *Direct // the default transport, when Transport is nil

	callerOnce sync.Once
	caller     *caller // what withCaller puts on contexts
	qOnce      sync.Once
	q          *queue.Queue
	enqueuing  sync.Map // job id → chan struct{} closed once Enqueue has emitted EventQueued
	stats      statsRecorder
	events     eventSink
	hooks      webhooks
	alerts     alertWatch
	recent     recentRing
	stash      deferredStash
	bufs       sync.Pool // *[]byte: the buffers Send writes messages into, when recyclable

	linkOnce  sync.Once
	linkKeys  []cipher.AEAD
	tokenKeys []tokenKeys // for return-path and mailto tokens, one per LinkKeys entry
	linkErr   error

	kept keptStore // unmatched inbound messages
	seen seenSet   // opens and clicks so far, for unique counts

	now func() time.Time // the clock of the suppression records; nil → time.Now
}

// clock returns the time by the Client's clock.
func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Timeouts bound the steps of an SMTP session (RFC 5321 §4.5.3.2). A zero
// field means the RFC's value.
type Timeouts struct {
	Greeting  time.Duration // the 220 greeting
	Command   time.Duration // EHLO, STARTTLS, RSET, QUIT
	Mail      time.Duration // MAIL FROM
	Rcpt      time.Duration // each RCPT TO
	DataInit  time.Duration // DATA → 354
	DataBlock time.Duration // each block of message data
	DataTerm  time.Duration // the final dot → 250
}

// DefaultClient is the Client used by the package-level Send. Its fields
// may be set before first use, like http.DefaultClient's.
var DefaultClient = &Client{}

// Send delivers m with DefaultClient.
func Send(ctx context.Context, m *mime.Message) (*Result, error) {
	return DefaultClient.Send(ctx, m)
}

// SendOptions tune one Send.
type SendOptions struct {
	// Metadata is the caller's correlation data, returned in every Event
	// about the message (and kept with its queued deferrals).
	Metadata map[string]string
	// Source sends from this one of Client.Sources; unset → by weight.
	Source netip.Addr
	// List makes the message a list (bulk) message of that name: each
	// recipient gets its own copy, in its own transaction, with a one-click
	// unsubscribe link (RFC 8058) of its own, List-Unsubscribe-Post and
	// List-Id (RFC 2919), and the suppression list is consulted for the
	// list as well as for all mail. It needs PublicURL and LinkKeys, and a
	// message without ListUnsubscribe of its own. See List for the name.
	// Only the links differ between the copies: the To and Cc fields are
	// the same in each, so give each subscriber a message of its own (or
	// put the subscribers in Bcc) to keep their addresses from each other.
	List string
	// Track turns on open and click tracking for this message (see
	// TrackingOptions); it needs PublicURL and LinkKeys. Each recipient
	// then gets a copy of its own.
	Track bool
	// Campaign names the campaign the message counts towards, in Stats,
	// events and the history; "" for none.
	Campaign string
}

// Send validates and writes m, signs it when a Signer is set, and makes one
// delivery attempt to every recipient (To, Cc and Bcc) now.
//
// A message that does not validate is returned as an error and nothing is
// sent. Otherwise the Result has an entry for every recipient, and the
// error is Result.Err(): nil when every recipient was delivered (or, with
// a Store, delivered or queued), else one error joining an *Error per
// recipient that was not. With a Store, deferred recipients are queued as
// one job, whose id is Result.QueueID, and retried by Run.
func (c *Client) Send(ctx context.Context, m *mime.Message) (*Result, error) {
	return c.SendWith(ctx, m, nil)
}

// SendWith is Send with options; opts may be nil.
func (c *Client) SendWith(ctx context.Context, m *mime.Message, opts *SendOptions) (*Result, error) {
	var buf []byte
	if c.recyclable() {
		bp, _ := c.bufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		defer func() {
			if cap(*bp) <= maxRecycled {
				c.bufs.Put(bp)
			}
		}()
		buf = (*bp)[:0]
		defer func() { *bp = buf[:0] }()
	}
	from, data, err := c.writeTo(buf, m)
	buf = data
	if err != nil {
		return nil, err
	}
	var o origin
	if opts != nil {
		o.meta = opts.Metadata
		o.want = opts.Source
		o.list = opts.List
		o.track, o.campaign = opts.Track, opts.Campaign
		if err := checkMetadata(opts.Metadata); err != nil {
			return nil, err
		}
		if err := c.checkTracking(opts.Track, opts.Campaign); err != nil {
			return nil, err
		}
	}
	if err := c.checkListMessage(m, o.list); err != nil {
		return nil, err
	}
	return c.send(ctx, from, m.Recipients(), data, o)
}

// checkListMessage validates what a list message needs.
func (c *Client) checkListMessage(m *mime.Message, list string) error {
	if list == "" {
		return nil
	}
	if err := checkList(list); err != nil {
		return err
	}
	if m.ListUnsubscribe != "" {
		return fmt.Errorf("%w: a list message gets its own List-Unsubscribe; leave ListUnsubscribe empty", ErrInvalidMessage)
	}
	return c.checkLinks()
}

// maxRecycled is the largest message buffer Send keeps for the next.
const maxRecycled = 1 << 20

// recyclable reports whether nothing can keep the bytes of a message Send
// wrote after Send returns, so that its buffer can be reused: the Direct
// transport (which sends them before it returns; another Transport may
// keep them), no Store (a deferred message is queued as it is) and no
// History (which may keep the message). Reusing the buffer spares the
// garbage collector a message's worth of bytes per Send: at 60 KB, a
// quarter of the sender's CPU.
func (c *Client) recyclable() bool {
	if c.Store != nil || c.History != nil {
		return false
	}
	_, direct := c.transport().(*Direct)
	return direct
}

// write validates m and writes it: the envelope sender and the bytes, at
// most MaxMessageSize of them. Send and Enqueue share it.
func (c *Client) write(m *mime.Message) (from string, data []byte, err error) {
	return c.writeTo(nil, m)
}

// writeTo is write, appending the bytes to dst (which it may reuse).
func (c *Client) writeTo(dst []byte, m *mime.Message) (from string, data []byte, err error) {
	if m == nil {
		return "", nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if from, err = m.EnvelopeFrom(); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if data, err = m.AppendTo(dst, nil); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if limit := c.maxMessageSize(); int64(len(data)) > limit {
		return "", nil, fmt.Errorf("%w: %d bytes written, over MaxMessageSize %d", ErrMessageTooLarge, len(data), limit)
	}
	return from, data, nil
}

// SendRaw sends an already written message (RFC 5322 bytes, read whole
// from msg) from the envelope sender from to the envelope recipients to.
// from may be empty: the null reverse-path of a bounce. Addresses are
// validated and their domains converted to A-labels; duplicates are sent
// once. Results and errors are as for Send.
//
// Lines may end in CRLF or a bare LF; bare LFs become CRLF before signing.
// A message with a CR not followed by LF, a NUL byte or a line over 998
// octets is refused with a *MessageError (wrapping ErrInvalidMessage)
// before anything is sent: such bytes are never repaired, because a
// receiver may read a lone CR in a header as the start of a new field.
// An 8-bit body goes only to servers that announce 8BITMIME; to others
// the recipient bounces with 5.6.3. A header with 8-bit bytes (UTF-8, RFC
// 6532) goes only with SMTPUTF8, as Send's UTF-8 addresses do; to servers
// without it the recipients bounce with 5.6.7 (it is never downgraded).
func (c *Client) SendRaw(ctx context.Context, from string, to []string, msg io.Reader) (*Result, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: nil message reader", ErrInvalidMessage)
	}
	env, err := normalizeEnvelope(from, to)
	if err != nil {
		return nil, err
	}
	limit := c.maxMessageSize()
	data, err := readAll(msg, limit+1)
	if err != nil {
		return nil, fmt.Errorf("relay: reading message: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrInvalidMessage)
	}
	if data, err = checkRaw(data); err != nil {
		return nil, err
	}
	return c.send(ctx, env.from, env.to, data, origin{})
}

// readAll reads at most limit bytes of r, in one allocation when r knows
// its length (bytes.Reader, strings.Reader, bytes.Buffer). A length below
// zero, from a broken Len method, is ignored.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	if l, ok := r.(interface{ Len() int }); ok && l.Len() >= 0 {
		buf := make([]byte, 0, min(int64(l.Len()), limit)+bytes.MinRead)
		w := bytes.NewBuffer(buf)
		_, err := w.ReadFrom(io.LimitReader(r, limit))
		return w.Bytes(), err
	}
	return io.ReadAll(io.LimitReader(r, limit))
}

type envelope struct {
	from string
	to   []string
}

// normalizeEnvelope validates the envelope addresses and de-duplicates the
// recipients (case-insensitively on the domain, as mime does).
func normalizeEnvelope(from string, to []string) (envelope, error) {
	var env envelope
	if from != "" {
		f, err := mime.NormalizeAddress(from)
		if err != nil {
			return env, fmt.Errorf("%w: sender %q: %w", ErrInvalidEnvelope, from, err)
		}
		env.from = f
	}
	if len(to) == 0 {
		return env, fmt.Errorf("%w: no recipients", ErrInvalidEnvelope)
	}
	seen := make(map[string]bool, len(to))
	for _, a := range to {
		n, err := mime.NormalizeAddress(a)
		if err != nil {
			return env, fmt.Errorf("%w: recipient %q: %w", ErrInvalidEnvelope, a, err)
		}
		if !seen[n] {
			seen[n] = true
			env.to = append(env.to, n)
		}
	}
	return env, nil
}

// send signs data if a Signer is set, delivers it, and queues the
// deferred recipients when there is a Store.
func (c *Client) send(ctx context.Context, from string, to []string, data []byte, o origin) (*Result, error) {
	if err := c.checkConfig(); err != nil {
		return nil, err
	}
	var err error
	if o.src, err = c.pickSource(o.want); err != nil {
		return nil, err
	}
	if !o.perCopy() {
		// A list or tracked message is signed per recipient, once
		// personalised.
		if data, err = c.sign(data); err != nil {
			return nil, err
		}
	}
	meta := o.meta
	o.start = time.Now()
	if c.History != nil {
		o.rec = queue.NewID(o.start)
	}
	var res *Result
	if err := ctx.Err(); err != nil {
		// Too late to try: every recipient is deferred (and queued, with
		// a Store), so that the caller still gets a Result to range over.
		res = &Result{Recipients: make([]RecipientResult, len(to))}
		for i, r := range to {
			res.Recipients[i] = RecipientResult{Recipient: r}
			res.Recipients[i].fail(Deferred, &Error{Recipient: r, Enhanced: "4.4.7", Message: "not attempted: " + err.Error(), Err: err})
		}
	} else {
		res = c.deliver(ctx, from, to, data, o)
		c.feedBounces(ctx, res, o.id)
		c.recordResult(ctx, data, o, res)
	}
	var qerr error
	var next time.Time
	if c.Store != nil {
		next, qerr = c.queueDeferred(context.WithoutCancel(ctx), from, data, o, res)
	}
	for i := range res.Recipients {
		e := resultEvent(&res.Recipients[i], cmp.Or(res.QueueID, o.rec), meta, o.start)
		e.List, e.Campaign = o.list, o.campaign
		e.first = true
		if e.Type == EventDeferred && res.QueueID != "" {
			e.NextAttempt = next
		}
		c.emit(e)
	}
	if qerr != nil {
		return res, errors.Join(qerr, res.Err())
	}
	return res, res.Err()
}

// origin says where an attempt comes from, for its events.
type origin struct {
	id    string            // queue job id, "" for Send
	meta  map[string]string // the caller's metadata
	start time.Time         // when the message was sent or queued
	want  netip.Addr        // the source address asked for, if any
	src   Source            // the source chosen for this attempt
	utf8  bool              // the header needs SMTPUTF8 (set by deliver)
	// attempts made before this one (a queued job's Attempts)
	attempts int
	list     string // SendOptions.List or EnqueueOptions.List
	campaign string // SendOptions.Campaign or EnqueueOptions.Campaign
	track    bool   // SendOptions.Track or EnqueueOptions.Track
	rec      string // the history record id of a Send, "" without History
}

// perCopy reports whether every recipient gets a copy of its own,
// personalised (and then signed) at each attempt.
func (o *origin) perCopy() bool { return o.list != "" || o.track }

// sign prepends the DKIM signatures when a Signer is set.
func (c *Client) sign(data []byte) ([]byte, error) {
	if c.Signer == nil {
		return data, nil
	}
	sigs, err := c.Signer.SignBytes(data)
	if err != nil {
		return nil, fmt.Errorf("relay: signing: %w", err)
	}
	return append(append(make([]byte, 0, len(sigs)+len(data)), sigs...), data...), nil
}

// capOr returns v, or def when v is 0, or no cap (the largest int) when v
// is negative.
func capOr(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return int(^uint(0) >> 1)
	}
	return v
}

func (c *Client) maxMessageSize() int64 {
	if c.MaxMessageSize > 0 {
		return c.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

var discardLogger = slog.New(slog.DiscardHandler)

// quiet reports whether l discards everything, as the default logger
// does: then l.With, which copies the logger and its attributes for every
// message, is skipped.
func quiet(l *slog.Logger) bool { return l == discardLogger || l.Handler() == slog.DiscardHandler }

// checkConfig validates, before anything is sent or stored, the settings
// that would otherwise fail at every attempt: the transport's (its EHLO
// name, with the rule of every SMTP command line) and the Sources.
func (c *Client) checkConfig() error {
	if err := c.checkTransport(); err != nil {
		return err
	}
	if err := c.checkBounceDomain(); err != nil {
		return err
	}
	if _, err := c.webhookSetup(); err != nil {
		return err
	}
	if _, err := c.alertSetup(); err != nil {
		return err
	}
	return c.checkSources()
}
