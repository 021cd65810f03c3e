package relay

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/report"
)

// ErrNotInbound: a recipient that is not one of BounceDomain's addresses
// (a return path, a mailto unsubscribe address, postmaster or abuse), or
// a return path whose token does not verify. ServeInbound refuses it at
// RCPT with 550 5.1.1; ProcessInbound returns it and does nothing.
var ErrNotInbound = errors.New("relay: not an address of the bounce domain")

// InboundKind says what a message that came back was.
type InboundKind int

// Inbound kinds.
const (
	InboundBounce      InboundKind = iota + 1 // a DSN or text bounce: delivery failed
	InboundDelay                              // a DSN saying a later MTA is still trying
	InboundNotice                             // a report with nothing to act on: a DSN of success, an authentication-failure report, a not-spam report
	InboundComplaint                          // an ARF complaint (abuse, fraud, virus, other)
	InboundAutoReply                          // an auto-reply (RFC 3834): vacation, out of office
	InboundUnsubscribe                        // mail to the mailto: unsubscribe address
	InboundUnmatched                          // none of the above, or not matched to a message: kept for a look
)

var inboundNames = [...]string{"", "bounce", "delay", "notice", "complaint", "auto-reply", "unsubscribe", "unmatched"}

// String returns the kind's name, such as "bounce".
func (k InboundKind) String() string {
	if k > 0 && int(k) < len(inboundNames) {
		return inboundNames[k]
	}
	return "unknown"
}

// MarshalText encodes the kind as its name.
func (k InboundKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// How an inbound message was matched to what was sent, strongest first.
const (
	MatchReturnPath  = "return-path"      // the VERP token of the address it came to, or of its Original-Mail-From or returned Return-Path
	MatchEnvelopeID  = "envelope-id"      // the DSN's Original-Envelope-ID (our ENVID)
	MatchLink        = "unsubscribe-link" // the sealed link in the returned header's List-Unsubscribe, or in an unsubscribe mail's subject
	MatchMessageID   = "message-id"       // only the returned Message-ID: not authenticated
	matchNone        = ""
	inboundIDPrefix  = "in-"
	maxInboundEvents = 100
)

// InboundResult says what ProcessInbound made of one message.
type InboundResult struct {
	// ID names this inbound message in its events (Event.Inbound) and, for
	// InboundUnmatched, in Client.Unmatched.
	ID string `json:"id"`
	// Kind is what the message was.
	Kind InboundKind `json:"kind"`
	// Match says how it was tied to a message sent (MatchReturnPath and
	// the other Match constants), "" when it was not.
	Match string `json:"match,omitempty"`
	// MessageID is the queue job id of the message it is about, or the
	// returned Message-ID for a message that was never queued.
	MessageID string `json:"message_id,omitempty"`
	// Recipients are the addresses it is about, as far as they were
	// verified: against the return path's token, or by the sealed link.
	// A match by Message-ID alone verifies none.
	Recipients []string `json:"recipients,omitempty"`
	// Suppressed are the addresses put on the suppression list.
	Suppressed []string `json:"suppressed,omitempty"`
	// Report is the parsed message.
	Report *report.Report `json:"report,omitempty"`
	// Events are the events it produced, as they were emitted.
	Events []Event `json:"events,omitempty"`
}

// ProcessInbound reads one message that came back to rcpt, an address of
// BounceDomain, and acts on it, as ServeInbound does for each message it
// receives: for applications that receive such mail another way (their
// own MTA, through a pipe; a provider's webhook). rcpt "" skips the
// address check and matches by the message alone.
//
// The message is recognised, in this order, as a DSN (RFC 3464), a text
// bounce of an MTA that sends none, an ARF complaint (RFC 5965), an
// auto-reply (RFC 3834), or, sent to a mailto unsubscribe address, an
// unsubscribe; anything else is unmatched and kept (Client.Unmatched).
// It is matched to the message sent by the token of the return path it
// came to, then the Original-Envelope-ID, then the sealed link or the
// Message-ID of the returned header.
//
// Failures are classified (package bounce) and reported as an
// asynchronous EventBounced or EventDelayed with the DSN's fields;
// complaints as EventComplained; auto-replies as EventAutoReplied, never
// as bounces. With Suppressions, addresses that do not exist and
// complaining addresses are put on the suppression list for all mail, and
// an unsubscribe for its list; only addresses verified against the token
// or the sealed link are: a report can never suppress an address it
// merely names.
//
// An error means the message was not processed: rcpt is not one of the
// bounce domain's addresses (ErrNotInbound), the message is unreadable or
// over Inbound.MaxMessageSize (report.ErrTooLarge, report.ErrMalformed),
// or the suppression list failed (the caller should answer with a
// temporary failure, so that the sender tries again).
func (c *Client) ProcessInbound(ctx context.Context, rcpt string, msg io.Reader) (InboundResult, error) {
	if msg == nil {
		return InboundResult{}, fmt.Errorf("%w: nil message reader", ErrInvalidMessage)
	}
	to, err := c.inboundRecipient(rcpt)
	if err != nil {
		return InboundResult{}, err
	}
	limit := c.Inbound.maxSize()
	data, err := readAll(msg, limit+1)
	if err != nil {
		return InboundResult{}, fmt.Errorf("relay: reading inbound message: %w", err)
	}
	if int64(len(data)) > limit {
		return InboundResult{}, fmt.Errorf("%w: over %d bytes", report.ErrTooLarge, limit)
	}
	return c.processData(ctx, to, data)
}

// processData parses and processes one message for one address, and
// emits its events.
func (c *Client) processData(ctx context.Context, to inboundAddr, data []byte) (InboundResult, error) {
	rep, err := parseInbound(data)
	if err != nil {
		return InboundResult{}, err
	}
	return c.processReport(ctx, to, rep, data)
}

// parseInbound reads a message that came back.
func parseInbound(data []byte) (*report.Report, error) {
	return report.ParseWith(bytes.NewReader(data), &report.Options{MaxSize: int64(len(data)) + 1})
}

// processReport processes one parsed message for one address, and emits
// its events.
func (c *Client) processReport(ctx context.Context, to inboundAddr, rep *report.Report, data []byte) (InboundResult, error) {
	in := &inbound{c: c, to: to, rep: rep, data: data}
	in.res = InboundResult{ID: newInboundID(), Report: rep}
	if err := in.process(ctx); err != nil {
		return in.res, err
	}
	for i := range in.res.Events {
		c.emit(in.res.Events[i])
		c.noteEvent(ctx, &in.res.Events[i])
	}
	return in.res, nil
}

// newInboundID returns a new id for an inbound message.
func newInboundID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return inboundIDPrefix + hex.EncodeToString(b[:])
}

// inboundAddr is an address of the bounce domain that mail may come to.
type inboundAddr struct {
	addr  string       // as given, normalised
	token *returnToken // the return path's or the unsubscribe address's token; nil for postmaster, abuse
}

// inboundRecipient checks that rcpt is an address of BounceDomain that
// takes mail: a return path or a mailto unsubscribe address whose token
// verifies, or postmaster (RFC 5321 §4.5.1) or abuse (RFC 2142), which
// feedback loops may be registered to.
func (c *Client) inboundRecipient(rcpt string) (inboundAddr, error) {
	if rcpt == "" {
		return inboundAddr{}, nil
	}
	if c.BounceDomain == "" {
		return inboundAddr{}, fmt.Errorf("%w: Client.BounceDomain is not set", ErrNotInbound)
	}
	at := strings.LastIndexByte(rcpt, '@')
	if at <= 0 {
		return inboundAddr{}, fmt.Errorf("%w: %q", ErrNotInbound, rcpt)
	}
	local, domain := rcpt[:at], strings.ToLower(strings.TrimSuffix(rcpt[at+1:], "."))
	if domain != c.bounceDomain() {
		return inboundAddr{}, fmt.Errorf("%w: %q is not in %s", ErrNotInbound, rcpt, c.bounceDomain())
	}
	switch strings.ToLower(local) {
	case "postmaster", "abuse":
		return inboundAddr{addr: strings.ToLower(local) + "@" + domain}, nil
	}
	t, err := c.openToken(local)
	if err != nil {
		return inboundAddr{}, fmt.Errorf("%w: %q: %w", ErrNotInbound, rcpt, err)
	}
	return inboundAddr{addr: strings.ToLower(local) + "@" + domain, token: t}, nil
}

// inbound is the processing of one message.
type inbound struct {
	c    *Client
	to   inboundAddr
	rep  *report.Report
	data []byte
	res  InboundResult

	token *returnToken // the return path's token, however found
	link  *link        // the sealed link found, if any
}

func (in *inbound) process(ctx context.Context) error {
	rep := in.rep
	if in.to.token != nil && in.to.token.prefix == tokenUnsubscribe {
		if rep.Kind == report.AutoReply {
			return in.autoReply()
		}
		if rep.Kind == report.Unknown {
			return in.unsubscribeByMail(ctx)
		}
		in.unmatched("a report sent to an unsubscribe address")
		return nil
	}
	in.match()
	switch rep.Kind {
	case report.DSN, report.Bounce:
		return in.bounce(ctx)
	case report.Feedback:
		return in.complaint(ctx)
	case report.AutoReply:
		return in.autoReply()
	}
	in.unmatched("")
	return nil
}

// match finds what the message is about: the token of a return path
// (the address it came to, the ENVID, the Original-Mail-From of a
// complaint, the returned Return-Path), else the sealed link of the
// returned List-Unsubscribe, else the returned Message-ID.
func (in *inbound) match() {
	c, rep := in.c, in.rep
	if t := in.to.token; t != nil && t.prefix == tokenBounce {
		in.setToken(t, MatchReturnPath)
		return
	}
	if t, err := c.openToken(rep.OriginalEnvelopeID); err == nil && t.prefix == tokenBounce {
		in.setToken(t, MatchEnvelopeID)
		return
	}
	var paths []string
	if rep.Feedback != nil {
		paths = append(paths, rep.Feedback.OriginalMailFrom)
	}
	paths = append(paths, originalHeader(rep, "Return-Path"))
	for _, p := range paths {
		if t := c.tokenOfPath(p); t != nil {
			in.setToken(t, MatchReturnPath)
			return
		}
	}
	if l := c.linkOfHeader(originalHeader(rep, "List-Unsubscribe")); l != nil {
		in.link = l
		in.res.Match, in.res.MessageID = MatchLink, l.msgID
		return
	}
	if o := rep.Original; o != nil && o.MessageID != "" {
		in.res.Match, in.res.MessageID = MatchMessageID, o.MessageID
	}
}

// setToken records a token match.
func (in *inbound) setToken(t *returnToken, how string) {
	in.token = t
	in.res.Match = how
	in.res.MessageID = t.jobID()
	if in.res.MessageID == "" {
		if o := in.rep.Original; o != nil && t.isMessage(o.MessageID) {
			in.res.MessageID = o.MessageID
		}
	}
}

// tokenOfPath opens the token of a return path in BounceDomain, or nil.
func (c *Client) tokenOfPath(path string) *returnToken {
	path = strings.Trim(strings.TrimSpace(path), "<>")
	at := strings.LastIndexByte(path, '@')
	if at <= 0 || c.BounceDomain == "" || !strings.EqualFold(strings.TrimSuffix(path[at+1:], "."), c.bounceDomain()) {
		return nil
	}
	t, err := c.openToken(path[:at])
	if err != nil || t.prefix != tokenBounce {
		return nil
	}
	return t
}

// linkOfHeader opens the sealed link of a List-Unsubscribe field of ours,
// or nil.
func (c *Client) linkOfHeader(v string) *link {
	if v == "" || c.PublicURL == "" {
		return nil
	}
	base, err := c.publicURL()
	if err != nil {
		return nil
	}
	prefix := base.String() + "/u/"
	for part := range strings.SplitSeq(v, ",") {
		u := strings.Trim(strings.TrimSpace(part), "<>")
		tok, ok := strings.CutPrefix(u, prefix)
		if !ok {
			continue
		}
		if l, err := c.open(tok); err == nil && l.kind == linkUnsubscribe {
			return &l
		}
	}
	return nil
}

// verify returns the first of addrs that the match stands for: the
// token's recipient, or the sealed link's.
func (in *inbound) verify(addrs ...string) string {
	for _, a := range addrs {
		a = strings.Trim(strings.TrimSpace(a), "<>")
		switch {
		case a == "":
		case in.token != nil && in.c.isRecipient(in.token, a):
			return a
		case in.link != nil && rcptTagKey(a) == rcptTagKey(in.link.addr):
			return in.link.addr
		}
	}
	return ""
}

// candidates are the addresses a report names besides its recipient
// groups: the returned header's To and Cc.
func (in *inbound) candidates() []string {
	var out []string
	for _, f := range []string{"To", "Cc"} {
		if v := originalHeader(in.rep, f); v != "" {
			if l, err := mail.ParseAddressList(v); err == nil {
				for _, a := range l {
					out = append(out, a.Address)
				}
			}
		}
	}
	return out
}

// bounce handles a DSN or a text bounce: an event per recipient group,
// and the suppression of the verified addresses that do not exist.
func (in *inbound) bounce(ctx context.Context) error {
	rep := in.rep
	groups := rep.Recipients
	if len(groups) == 0 {
		// A bounce that names no recipient: with a token, it is about
		// the token's one; the text says why.
		groups = []report.Recipient{{Action: "failed", DiagnosticCode: firstLine(rep.Text)}}
	}
	failed, delayed := false, false
	var fails []failure
	for i := range groups {
		g := groups[i]
		action := strings.ToLower(g.Action)
		if action == "" {
			action = "failed"
		}
		var typ EventType
		switch action {
		case "failed":
			typ, failed = EventBounced, true
		case "delayed":
			typ, delayed = EventDelayed, true
		default: // delivered, relayed, expanded: nothing to do
			continue
		}
		addr := in.verify(append([]string{g.OriginalRecipient, g.FinalRecipient}, in.candidates()...)...)
		text := g.DiagnosticCode
		reason := ""
		if text == "" || g.Status == "" || strings.HasSuffix(g.Status, ".0.0") {
			// Exim's own DSNs say only 5.0.0, and the reason ("Unknown
			// user") is in the human-readable part, under the address.
			reason = reasonUnder(rep.Text, cmp.Or(g.FinalRecipient, g.OriginalRecipient))
			if reason == "" {
				reason = firstLines(rep.Text, 20)
			}
			text = strings.TrimSpace(text + " " + reason)
		}
		class := bounce.Classify(g.Code, g.Status, text)
		if typ == EventDelayed {
			class.Permanent, class.Suppress = false, false
		}
		e := in.event(typ, addr)
		if addr == "" && in.res.Match == MatchMessageID {
			// Not authenticated: the address as the report names it.
			e.Recipient = cmp.Or(g.OriginalRecipient, g.FinalRecipient)
			e.Domain = domainOf(e.Recipient)
		}
		e.Code, e.Enhanced, e.Message, e.Category = g.Code, g.Status, strings.TrimSpace(g.DiagnosticCode), class.Category
		if e.Message == "" {
			e.Message = firstLine(reason)
		}
		e.MX = g.RemoteMTA
		dsn := g
		e.DSN = &dsn
		in.add(e)
		if addr != "" && typ == EventBounced {
			fails = append(fails, failure{addr: addr, class: class, source: in.source(g.Status + " " + g.DiagnosticCode)})
			if class.Suppress {
				in.res.Suppressed = append(in.res.Suppressed, addr)
			}
		}
	}
	switch {
	case failed:
		in.res.Kind = InboundBounce
	case delayed:
		in.res.Kind = InboundDelay
	default:
		in.res.Kind = InboundNotice
	}
	if in.res.Match == matchNone {
		in.keep()
	}
	in.c.feed(ctx, fails)
	return nil
}

// complaint handles an ARF report: EventComplained, and the complaining
// address suppressed for all mail.
func (in *inbound) complaint(ctx context.Context) error {
	fb := in.rep.Feedback
	switch strings.ToLower(fb.FeedbackType) {
	case "abuse", "fraud", "virus", "other", "":
	default: // not-spam, auth-failure (RFC 6591): not about the recipient
		in.res.Kind = InboundNotice
		return nil
	}
	in.res.Kind = InboundComplaint
	addr := in.verify(append(append([]string{}, fb.OriginalRcptTo...), in.candidates()...)...)
	if addr == "" && in.link != nil {
		addr = in.link.addr
	}
	e := in.event(EventComplained, addr)
	if addr == "" && in.res.Match == MatchMessageID && len(fb.OriginalRcptTo) > 0 {
		e.Recipient = fb.OriginalRcptTo[0]
		e.Domain = domainOf(e.Recipient)
	}
	e.Message = fb.FeedbackType
	f := *fb
	e.Feedback = &f
	in.add(e)
	if in.res.Match == matchNone {
		in.keep()
	}
	if addr == "" || in.c.Suppressions == nil {
		return nil
	}
	key, err := in.c.suppressionKey(addr)
	if err != nil {
		return nil
	}
	err = in.c.Suppressions.Suppress(context.WithoutCancel(ctx), queue.Suppression{Address: key, Reason: queue.Complained,
		Source: in.source("complaint " + fb.FeedbackType + " " + fb.UserAgent), Created: time.Now()})
	if err != nil {
		return fmt.Errorf("relay: recording a complaint: %w", err)
	}
	in.res.Suppressed = append(in.res.Suppressed, addr)
	return nil
}

// autoReply handles an auto-reply: EventAutoReplied, never a bounce.
func (in *inbound) autoReply() error {
	in.res.Kind = InboundAutoReply
	if in.token == nil && in.to.token != nil && in.to.token.prefix == tokenUnsubscribe {
		in.token = in.to.token
	}
	addr := in.verify(append([]string{in.rep.From}, in.candidates()...)...)
	e := in.event(EventAutoReplied, addr)
	e.Message = in.rep.Subject
	in.add(e)
	return nil
}

// unsubscribeByMail handles mail to a mailto unsubscribe address: the
// sealed link in the subject names the address and the list; without it,
// the sender's address counts when the token says it is the recipient.
func (in *inbound) unsubscribeByMail(ctx context.Context) error {
	c, t := in.c, in.to.token
	in.token = t
	var l link
	for f := range strings.FieldsSeq(in.rep.Subject) {
		if k, err := c.open(f); err == nil && k.kind == linkUnsubscribe && c.isRecipient(t, k.addr) {
			l = k
			break
		}
	}
	how := MatchLink
	if l.addr == "" {
		from := in.verify(in.rep.From)
		if from == "" {
			in.unmatched("an unsubscribe from an address the message was not sent to")
			return nil
		}
		l = link{addr: from, list: c.listOfToken(t)}
		how = MatchReturnPath
	}
	if c.Suppressions == nil {
		in.unmatched("an unsubscribe, but Client.Suppressions is nil")
		return nil
	}
	in.res.Kind, in.res.Match, in.res.MessageID = InboundUnsubscribe, how, l.msgID
	in.res.Recipients = []string{l.addr}
	if err := c.unsubscribe(ctx, l, l.list, "mail"); err != nil {
		return err
	}
	in.res.Suppressed = []string{l.addr}
	return nil
}

// listOfToken finds the list an unsubscribe token was made for among
// Pages.Lists; "" (all mail) when it is not there.
func (c *Client) listOfToken(t *returnToken) string {
	for _, l := range c.Pages.Lists {
		if c.isList(t, l.Name) {
			return l.Name
		}
	}
	return ""
}

// unmatched records a message that matched nothing, and keeps it.
func (in *inbound) unmatched(why string) {
	in.res.Kind = InboundUnmatched
	e := in.event(EventUnmatched, "")
	e.Message = strings.TrimSpace(why + " " + in.describe())
	in.add(e)
	in.keep()
}

// describe is a one-line description of the message, for events.
func (in *inbound) describe() string {
	return fmt.Sprintf("from %q, subject %q", in.rep.From, in.rep.Subject)
}

// event is an event of this message about addr (verified, or "").
func (in *inbound) event(t EventType, addr string) Event {
	e := Event{Type: t, Time: time.Now(), MessageID: in.res.MessageID, Recipient: addr, Domain: domainOf(addr),
		Async: true, Inbound: in.res.ID}
	if in.link != nil {
		e.List = in.link.list
	}
	if addr != "" && !slices.Contains(in.res.Recipients, addr) {
		in.res.Recipients = append(in.res.Recipients, addr)
	}
	return e
}

// add collects an event for emission, up to a bound.
func (in *inbound) add(e Event) {
	if len(in.res.Events) < maxInboundEvents {
		in.res.Events = append(in.res.Events, e)
	}
}

// source is the suppression entry's Source for this message.
func (in *inbound) source(what string) string {
	s := in.res.ID
	if in.res.MessageID != "" {
		s = in.res.MessageID + " " + s
	}
	return strings.TrimSpace(s + ": " + strings.TrimSpace(what))
}

// keep puts the message in the store of unmatched mail.
func (in *inbound) keep() {
	in.c.keep(KeptMessage{ID: in.res.ID, Received: time.Now(), Kind: in.res.Kind, To: in.to.addr,
		From: in.rep.From, Subject: in.rep.Subject, Data: in.data})
}

// originalHeader is a field of the returned or reported message's header,
// or "".
func originalHeader(rep *report.Report, name string) string {
	if rep.Original == nil {
		return ""
	}
	return rep.Original.Header.Get(name)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// reasonUnder returns what a bounce's text says under the line naming
// addr, as Exim writes it ("  ann@example.com\n    Unknown user"): the
// indented lines that follow, joined; "" when there are none.
func reasonUnder(text, addr string) string {
	if addr == "" {
		return ""
	}
	var out []string
	found := false
	for line := range strings.Lines(text) {
		l := strings.TrimSpace(line)
		switch {
		case !found:
			found = strings.Contains(strings.ToLower(l), strings.ToLower(addr))
		case l != "" && (line[0] == ' ' || line[0] == '\t') && !strings.Contains(l, "@"):
			out = append(out, l)
		default:
			return strings.Join(out, " ")
		}
	}
	return strings.Join(out, " ")
}

// firstLines returns up to n lines of s, joined by spaces.
func firstLines(s string, n int) string {
	var out []string
	for line := range strings.Lines(s) {
		if len(out) == n {
			break
		}
		if l := strings.TrimSpace(line); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}
