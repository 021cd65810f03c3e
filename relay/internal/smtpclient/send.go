package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pipelineBDATMax is the largest message whose BDAT chunk is written in the
// same batch as MAIL and RCPT (one round trip). A larger one waits for the
// RCPT replies first, so it is not sent when every recipient is refused.
const pipelineBDATMax = 64 << 10

// Envelope is one transaction's envelope (RFC 5321 §2.3.1).
type Envelope struct {
	// From is the reverse-path as an addr-spec without angle brackets;
	// "" is the null reverse-path of a bounce.
	From string
	// To are the forward-paths, addr-specs without angle brackets; at
	// least one. Each gets a RcptResult, in this order.
	To []string
	// SMTPUTF8 asks for SMTPUTF8 (RFC 6531) even if every address is
	// ASCII, e.g. because the header holds UTF-8 addresses. Non-ASCII
	// addresses ask for it by themselves.
	SMTPUTF8 bool
	// RequireTLS sends REQUIRETLS (RFC 8689 §4.2). A session that is not
	// TLS or a server without REQUIRETLS refuses the whole transaction
	// locally (ErrRequireTLS, 5.7.10) before anything is sent.
	RequireTLS bool
	// DSN holds the delivery status notification parameters (RFC 3461);
	// nil → none. They are sent only when the server offers DSN.
	DSN *DSN
}

// DSN parameters (RFC 3461 §4).
type DSN struct {
	Return     string   // RET: "FULL" or "HDRS"; "" → not sent
	EnvelopeID string   // ENVID, xtext-encoded on the wire; "" → not sent
	Notify     []string // NOTIFY for every recipient: "NEVER", or any of "SUCCESS", "FAILURE", "DELAY"
	// OriginalRecipient sends ORCPT=rfc822;<address> for every ASCII
	// recipient.
	OriginalRecipient bool
}

// RcptResult is the outcome for one recipient.
type RcptResult struct {
	Addr string // as in Envelope.To
	// Reply is the server's reply to this RCPT; Code 0 if it was not sent.
	Reply Reply
	// Err is nil when the server accepted the message for this recipient
	// (RCPT and the end of data both succeeded). Otherwise it is the *Error
	// that decided (the RCPT, MAIL, DATA or final reply, or a local reason
	// with one of the sentinels) or the transport error that broke the
	// session. Use IsPermanent to tell a bounce from a deferral.
	Err error
}

// TxResult is the outcome of one transaction.
type TxResult struct {
	Mail  Reply        // reply to MAIL; Code 0 if it was not sent
	Rcpts []RcptResult // one per Envelope.To, same order
	Data  Reply        // reply to DATA (354 expected); Code 0 with BDAT
	Final Reply        // reply after the message data; Code 0 if not reached
	Size  int64        // octets of normalised message data (SIZE=, BDAT)

	Pipelined bool // commands were pipelined (RFC 2920)
	Chunked   bool // BDAT was used (RFC 3030)
	EightBit  bool // BODY=8BITMIME was sent
	UTF8      bool // SMTPUTF8 was sent
}

// Delivered is the number of recipients the server accepted the message for.
func (t *TxResult) Delivered() int {
	n := 0
	for _, r := range t.Rcpts {
		if r.Err == nil {
			n++
		}
	}
	return n
}

// Send runs one mail transaction: MAIL, RCPT for each recipient, then DATA
// or BDAT with body. body is the whole message (header and body, as written
// by package mime and signed by dkim); it is sent normalised by DataWriter,
// so bare CR and LF become CRLF and no premature end-of-data is possible.
//
// Commands are pipelined when the server offers PIPELINING (MAIL, every
// RCPT and DATA in one write; with CHUNKING and a body up to 64 KiB, the
// BDAT chunk too). BDAT is used when the server offers CHUNKING. The SIZE,
// 8BITMIME, SMTPUTF8, LIMITS RCPTMAX, DSN and REQUIRETLS rules are in the
// package documentation and the Envelope fields.
//
// Every recipient gets a RcptResult. The error is nil when at least one
// recipient was delivered; otherwise it is the transaction's failure (a
// refused MAIL, DATA or final reply, a local refusal, a broken session) or,
// when each recipient was refused on its own, the first one's error. When
// nothing was attempted the result is nil: an invalid envelope
// (ErrInvalidInput, found before any I/O), a closed session, a done
// context, or no Hello yet. After a transaction that did not end with the
// final reply, the next Send starts with RSET (pipelined when possible).
func (c *Client) Send(ctx context.Context, env *Envelope, body []byte) (*TxResult, error) {
	if err := checkEnvelope(env); err != nil {
		return nil, err
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.end()
	if !c.helloDone {
		return nil, errors.New("smtpclient: Send before Hello")
	}
	res := &TxResult{Rcpts: make([]RcptResult, len(env.To))}
	for i, a := range env.To {
		res.Rcpts[i].Addr = a
	}
	info := scanMessage(body)
	size, eight := info.size, info.eight
	res.Size = size

	// Local refusals of the whole transaction, before anything is sent.
	canUTF8 := c.Supports("SMTPUTF8")
	needUTF8 := env.SMTPUTF8 || !isASCII(env.From)
	var txErr *Error
	switch max := c.MaxSize(); {
	case needUTF8 && !canUTF8:
		txErr = localError("MAIL FROM", "5.6.7", ErrSMTPUTF8Required,
			"the sender address or the message needs SMTPUTF8, which the server does not offer")
	case info.problem != "":
		txErr = localError("MAIL FROM", "5.6.0", ErrInvalidData, info.problem)
	case eight && !c.Supports("8BITMIME"):
		txErr = localError("MAIL FROM", "5.6.3", ErrEightBitRequired,
			"the message has 8-bit data and the server does not offer 8BITMIME")
	case env.RequireTLS && !(c.isTLS && c.Supports("REQUIRETLS")):
		txErr = localError("MAIL FROM", "5.7.10", ErrRequireTLS,
			"the message requires TLS (REQUIRETLS), which this session cannot provide")
	case max > 0 && size > max:
		txErr = localError("MAIL FROM", "5.3.4", ErrMessageTooLarge,
			fmt.Sprintf("message of %d octets exceeds the server's SIZE of %d", size, max))
	}
	if txErr != nil {
		for i := range res.Rcpts {
			res.Rcpts[i].Err = txErr
		}
		return res, txErr
	}

	// Local refusals of single recipients.
	send := c.sendIdx[:0]
	rcptMax := c.RcptMax()
	for i, a := range env.To {
		if !isASCII(a) {
			if !canUTF8 {
				res.Rcpts[i].Err = localError("RCPT TO", "5.6.7", ErrSMTPUTF8Required,
					"the recipient address is not ASCII and the server does not offer SMTPUTF8")
				continue
			}
			needUTF8 = true
		}
		if rcptMax > 0 && len(send) >= rcptMax {
			res.Rcpts[i].Err = localError("RCPT TO", "4.5.3", ErrTooManyRecipients,
				fmt.Sprintf("over the server's RCPTMAX of %d; send in another transaction", rcptMax))
			continue
		}
		send = append(send, i)
	}
	c.sendIdx = send
	if len(send) == 0 {
		return res, firstErr(res)
	}

	t := tx{c: c, env: env, res: res, body: body, send: send, info: info}
	t.pipe = c.Supports("PIPELINING") && !c.opts.DisablePipelining
	t.chunk = c.Supports("CHUNKING") && !c.opts.DisableChunking
	t.eight = eight
	t.utf8 = needUTF8
	t.dsn = env.DSN != nil && c.Supports("DSN")
	res.Pipelined, res.Chunked, res.EightBit, res.UTF8 = t.pipe, t.chunk, t.eight, t.utf8
	err := t.run()
	if errors.Is(err, ErrProtocol) {
		// Replies out of step with the commands, or broken: none of this
		// transaction's replies can be trusted to answer what they seem
		// to, so every recipient sent gets the (temporary) failure.
		for _, i := range t.send {
			res.Rcpts[i].Err = err
		}
		return res, err
	}
	if err != nil {
		t.fill(err)
		if res.Delivered() > 0 {
			return res, nil
		}
		return res, err
	}
	if n := c.rr.r.Buffered(); n > 0 {
		// Every command has its reply, yet more came: the server is out
		// of step. This transaction's replies came in order and stand;
		// the session ends, so nothing later is read as their answer.
		c.unsolicited(n)
	}
	if res.Delivered() > 0 {
		return res, nil
	}
	return res, firstErr(res)
}

// firstErr is the first recipient's error.
func firstErr(res *TxResult) error {
	for _, r := range res.Rcpts {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// checkEnvelope validates everything that becomes a command line.
func checkEnvelope(env *Envelope) error {
	if env == nil || len(env.To) == 0 {
		return fmt.Errorf("%w: no recipients", ErrInvalidInput)
	}
	if err := checkPath("MAIL FROM", env.From, true); err != nil {
		return err
	}
	for _, a := range env.To {
		if err := checkPath("RCPT TO", a, false); err != nil {
			return err
		}
	}
	return checkDSN(env.DSN)
}

// tx is one transaction in progress.
type tx struct {
	c    *Client
	env  *Envelope
	res  *TxResult
	body []byte
	info bodyInfo // what scanMessage found in body
	send []int    // indexes into env.To of recipients sent RCPT

	pipe, chunk, eight, utf8, dsn bool
	accepted                      int   // recipients the server accepted
	mailErr                       error // MAIL was refused
}

// outOfSequence ends the session after a 503 ("bad sequence of commands")
// to a command the transaction was ready for: to MAIL after the session
// was reset, to RCPT after MAIL was accepted, to DATA after a recipient
// was. The server has lost track of the transaction, so the reply says
// nothing about the recipients; it is a (temporary) protocol error.
func (t *tx) outOfSequence(command string, r Reply) error {
	return t.c.fail(command, protoErr("the server answered %s with %s out of sequence", command, r))
}

// fill gives err to every sent recipient that has no outcome yet.
func (t *tx) fill(err error) {
	for _, i := range t.send {
		if t.res.Rcpts[i].Err == nil {
			t.res.Rcpts[i].Err = err
		}
	}
}

// run performs the exchange; a returned error is the transaction's failure,
// for every recipient still without an outcome.
func (t *tx) run() error {
	err := t.exchange()
	if err == nil && t.mailErr != nil {
		return t.mailErr
	}
	return err
}

// exchange writes the commands and reads the replies.
func (t *tx) exchange() error {
	c := t.c
	o := &c.opts
	inlineBDAT := t.pipe && t.chunk && t.res.Size <= pipelineBDATMax
	rset := c.needReset
	c.needReset = true // until the final reply of a transaction with recipients

	if t.pipe {
		if rset {
			c.writeLine("RSET")
		}
		t.writeMail()
		for _, i := range t.send {
			t.writeRcpt(t.env.To[i])
		}
		if !t.chunk {
			c.writeLine("DATA")
		} else if inlineBDAT {
			t.writeBDAT()
		}
		if err := c.flush("MAIL FROM", o.MailTimeout); err != nil {
			return err
		}
	}

	if rset {
		if !t.pipe {
			c.writeLine("RSET")
			if err := c.flush("RSET", o.CommandTimeout); err != nil {
				return err
			}
		}
		c.setDeadline(o.CommandTimeout)
		if _, err := c.readReply("RSET"); err != nil {
			return err
		}
	}

	if !t.pipe {
		t.writeMail()
		if err := c.flush("MAIL FROM", o.MailTimeout); err != nil {
			return err
		}
	}
	c.setDeadline(o.MailTimeout)
	mr, err := c.readReply("MAIL FROM")
	if err != nil {
		return err
	}
	t.res.Mail = mr
	if mr.Code == 503 {
		return t.outOfSequence("MAIL FROM", mr)
	}
	if !mr.Positive() {
		t.mailErr = replyError("MAIL FROM", mr)
	}
	mailErr := t.mailErr

	for _, i := range t.send {
		if !t.pipe {
			if mailErr != nil {
				break
			}
			t.writeRcpt(t.env.To[i])
			if err := c.flush("RCPT TO", o.RcptTimeout); err != nil {
				return err
			}
		}
		c.setDeadline(o.RcptTimeout)
		r, err := c.readReply("RCPT TO")
		if err != nil {
			return err
		}
		t.res.Rcpts[i].Reply = r
		switch {
		case mailErr == nil && r.Code == 503:
			return t.outOfSequence("RCPT TO", r)
		case mailErr != nil:
			t.res.Rcpts[i].Err = mailErr
		case !r.Positive():
			t.res.Rcpts[i].Err = replyError("RCPT TO", r)
		default:
			t.accepted++
		}
	}
	if mailErr != nil {
		t.fill(mailErr)
	}

	switch {
	case t.pipe && !t.chunk:
		return t.dataReply()
	case inlineBDAT:
		return t.finalReply("BDAT")
	}
	if t.accepted == 0 {
		return nil // nothing to send; RSET opens the next transaction
	}
	if t.chunk {
		t.writeBDAT()
		if err := c.flush("BDAT", o.DataBlockTimeout); err != nil {
			return err
		}
		return t.finalReply("BDAT")
	}
	c.writeLine("DATA")
	if err := c.flush("DATA", o.DataInitTimeout); err != nil {
		return err
	}
	return t.dataReply()
}

// dataReply reads the reply to DATA and, on 354, sends the data.
func (t *tx) dataReply() error {
	c := t.c
	c.setDeadline(c.opts.DataInitTimeout)
	r, err := c.readDataReply()
	if err != nil {
		return err
	}
	t.res.Data = r
	if r.Code == 503 && t.accepted > 0 {
		return t.outOfSequence("DATA", r)
	}
	if r.Code != 354 {
		if t.accepted > 0 {
			e := replyError("DATA", r)
			t.fill(e)
			return e
		}
		return nil
	}
	if t.accepted == 0 {
		// 354 although no recipient was accepted (RFC 2920 §3.1 says the
		// server must refuse DATA then): end the data at once, empty.
		c.writeLine(".")
		if err := c.flush("DATA", c.opts.DataBlockTimeout); err != nil {
			return err
		}
		c.setDeadline(c.opts.DataTermTimeout)
		_, err := c.readReply("DATA")
		return err
	}
	c.cw.dataBlock = true
	written := int64(len(t.body))
	if t.info.clean && !t.info.dots {
		// Nothing to normalise or stuff: the message as it is, at once.
		c.bw.Write(t.body)    //nolint:errcheck // bufio.Writer errors resurface in Flush
		c.bw.Write(endOfData) //nolint:errcheck
	} else {
		c.dw.Reset(c.bw, true)
		c.dw.Write(t.body) //nolint:errcheck // bufio.Writer errors resurface in Flush
		c.dw.Close()       //nolint:errcheck
		written = c.dw.Written() - 3
	}
	if c.debug != nil {
		fmt.Fprintf(c.debug, "C: [%d octets of message data]\nC: .\n", written)
	}
	err = c.bw.Flush()
	c.cw.dataBlock = false
	if err != nil {
		return c.fail("DATA", err)
	}
	return t.finalReply("DATA")
}

// finalReply reads the reply after the message data (§4.5.3.2.6).
func (t *tx) finalReply(command string) error {
	c := t.c
	c.setDeadline(c.opts.DataTermTimeout)
	r, err := c.readReply(command)
	if err != nil {
		return err
	}
	t.res.Final = r
	if t.accepted == 0 {
		return nil
	}
	// A transaction that failed at its end may have left state behind on
	// a server that does not reset by itself (mox keeps it): RSET first.
	c.needReset = !r.Positive()
	if !r.Positive() {
		e := replyError(command, r)
		t.fill(e)
		return e
	}
	return nil
}

// writeMail buffers the MAIL command with its parameters.
func (t *tx) writeMail() {
	c := t.c
	b := append(c.line[:0], "MAIL FROM:<"...)
	b = append(b, t.env.From...)
	b = append(b, '>')
	if c.Supports("SIZE") {
		b = append(b, " SIZE="...)
		b = strconv.AppendInt(b, t.res.Size, 10)
	}
	if t.eight {
		b = append(b, " BODY=8BITMIME"...)
	}
	if t.utf8 {
		b = append(b, " SMTPUTF8"...)
	}
	if t.env.RequireTLS {
		b = append(b, " REQUIRETLS"...)
	}
	if t.dsn {
		if d := t.env.DSN; d.Return != "" {
			b = append(b, " RET="...)
			b = append(b, strings.ToUpper(d.Return)...)
		}
		if d := t.env.DSN; d.EnvelopeID != "" {
			b = append(b, " ENVID="...)
			b = appendXtext(b, d.EnvelopeID)
		}
	}
	c.line = b
	c.writeBuilt()
}

// writeRcpt buffers one RCPT command.
func (t *tx) writeRcpt(addr string) {
	c := t.c
	b := append(c.line[:0], "RCPT TO:<"...)
	b = append(b, addr...)
	b = append(b, '>')
	if t.dsn {
		d := t.env.DSN
		for k, n := range d.Notify {
			if k == 0 {
				b = append(b, " NOTIFY="...)
			} else {
				b = append(b, ',')
			}
			b = append(b, strings.ToUpper(n)...)
		}
		if d.OriginalRecipient && isASCII(addr) {
			b = append(b, " ORCPT=rfc822;"...)
			b = appendXtext(b, addr)
		}
	}
	c.line = b
	c.writeBuilt()
}

// writeBDAT buffers "BDAT n LAST" and the normalised message.
func (t *tx) writeBDAT() {
	c := t.c
	b := append(c.line[:0], "BDAT "...)
	b = strconv.AppendInt(b, t.res.Size, 10)
	b = append(b, " LAST"...)
	c.line = b
	c.writeBuilt()
	if c.debug != nil {
		fmt.Fprintf(c.debug, "C: [%d octets of message data]\n", t.res.Size)
	}
	c.cw.dataBlock = true
	if t.info.clean {
		c.bw.Write(t.body) //nolint:errcheck // bufio.Writer errors resurface in Flush
	} else {
		c.dw.Reset(c.bw, false)
		c.dw.Write(t.body) //nolint:errcheck // bufio.Writer errors resurface in Flush
		c.dw.Close()       //nolint:errcheck
	}
	c.cw.dataBlock = false
}
