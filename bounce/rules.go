package bounce

// The rules, first match wins. Each rule may require an enhanced status
// code (status), a reply code (codes) and one of its phrases in the text
// (text); a rule without a condition of a kind does not look at it.
//
// Status patterns name the subject and detail of an RFC 3463 code and leave
// the class to Class.Permanent: "X.1.1", a subject with any detail "X.7.*",
// a range of details "X.7.20-27", or "none" for a reply that has no
// enhanced code. Phrases are described in match.go.
//
// The order is the design:
//
//  1. Enhanced codes whose meaning no text changes (RFC 7372's
//     authentication codes, too many recipients, message too big).
//  2. Texts about the sender and the transport, in this order: greylisting,
//     protocol errors, routing and relaying, TLS, blocklists,
//     authentication, rate limits, reputation, content, then the mailbox's
//     state (full, disabled, message too large), then the words of spam,
//     blocks and policy, then two texts that do name a bad address
//     (Exchange's DBEB "5.4.1 ... Access denied", RFC 5321's "553 ...
//     mailbox name not allowed"), then every other word of refusal. No
//     rule before the words of spam, blocks and policy can suppress, and
//     none before step 3 for an X.7.x code, so "550 5.1.1 blocked for
//     spam" or "user unknown ... looks like spam" is never taken for a dead
//     mailbox (TestTableKeepsGuarantees checks this).
//  3. Every X.7.x code: a policy code is never read as a missing mailbox,
//     whatever its text says ("550 5.7.1 No such user!" is Other).
//  4. The address codes X.1.x.
//  5. Texts that say the domain or the mailbox does not exist, for replies
//     whose code does not (no enhanced code, X.0.0, X.2.x, X.5.0 ...).
//  6. The remaining codes by subject, then bare reply codes.
//
// Orders that matter inside step 2, each from a real reply in the
// fixtures: routing before rate ("too many hops"); blocklists before
// authentication (Outlook.com's "DY-001 ... unauthenticated SMTP email ...
// Spamhaus"); authentication before rate (Gmail's "rate limited because
// DKIM does not pass"); rate before reputation (Microsoft's "4.7.650 ...
// rate limited due to IP reputation"); the mailbox's state before the
// generic words ("550 5.2.1 This mailbox has been blocked due to
// inactivity").
var rules = []rule{
	// 1. Codes that decide alone.
	{name: "auth-status", status: []string{"X.7.20-27"}, cat: AuthFailure},
	{name: "too-many-recipients-status", status: []string{"X.5.3"}, cat: RateLimited},
	{name: "too-big-status", status: []string{"X.3.4"}, cat: MessageTooLarge},

	// 2. The sender, the transport, the mailbox's state.
	{name: "greylisted", text: greylisted, cat: Other},
	{name: "protocol", text: protocolErrors, cat: Other},
	{name: "routing", text: routingTexts, cat: Routing},
	{name: "tls", text: tlsTexts, cat: TLSRequired},
	{name: "blocklist", text: blocklists, cat: PolicyBlock},
	{name: "auth", text: authTexts, cat: AuthFailure},
	{name: "rate-limit", text: rateTexts, cat: RateLimited},
	{name: "reputation", text: reputationTexts, cat: PolicyBlock},
	{name: "content", text: contentTexts, cat: ContentBlock},
	{name: "mailbox-full", text: fullTexts, cat: MailboxFull},
	{name: "mailbox-disabled", text: disabledTexts, cat: MailboxDisabled},
	{name: "too-large", text: sizeTexts, cat: MessageTooLarge},
	{name: "spam-block-policy", text: spamBlockPolicy, cat: PolicyBlock},
	{name: "exchange-dbeb", status: []string{"X.4.1"}, text: directoryEdgeBlock, cat: InvalidRecipient},
	{
		name:   "mailbox-name-not-allowed",
		status: []string{"none", "X.0.*", "X.1.*", "X.5.*"},
		text:   []string{"mailbox name not allowed"},
		cat:    InvalidRecipient,
	},
	{name: "policy", text: policyTexts, cat: PolicyBlock},

	// 3. Security and policy codes.
	{name: "policy-status-unknown-user", status: []string{"X.7.*"}, text: unknownUserTexts, cat: Other},
	{name: "tls-status", status: []string{"X.7.5", "X.7.10", "X.7.11", "X.7.30"}, cat: TLSRequired},
	{name: "smtp-auth-status", status: []string{"X.7.8", "X.7.9", "X.7.12", "X.7.14", "X.7.29"}, cat: AuthFailure},
	{name: "account-disabled-status", status: []string{"X.7.13"}, cat: MailboxDisabled},
	{name: "rrvs-status", status: []string{"X.7.17-19"}, cat: Other},
	{name: "too-big-for-priority-status", status: []string{"X.7.16"}, cat: MessageTooLarge},
	{name: "mail-flood-status", status: []string{"X.7.28"}, cat: RateLimited},
	{name: "policy-status", status: []string{"X.7.*"}, cat: PolicyBlock},

	// 4. Address codes.
	{name: "exchange-recipient-not-found", status: []string{"X.1.10"}, text: exchangeNotFound, cat: InvalidRecipient},
	{name: "bad-mailbox-status", status: []string{"X.1.1", "X.1.3", "X.1.6"}, cat: InvalidRecipient},
	{name: "bad-domain-status", status: []string{"X.1.2", "X.1.10"}, cat: UnknownDomain},
	{name: "bad-sender-status", status: []string{"X.1.7", "X.1.8"}, cat: AuthFailure},

	// 5. Texts about the address.
	{name: "unknown-domain", text: unknownDomainTexts, cat: UnknownDomain},
	{
		name:   "mailbox-unavailable",
		status: []string{"none", "X.0.0", "X.5.0"},
		codes:  []int{550, 551, 553, 554},
		text:   []string{"mailbox unavailable", "mailbox is unavailable"},
		cat:    InvalidRecipient,
	},
	{name: "unknown-user", text: unknownUserTexts, cat: InvalidRecipient},

	// 6. The remaining codes.
	{name: "mailbox-disabled-status", status: []string{"X.2.1"}, cat: MailboxDisabled},
	{name: "mailbox-full-status", status: []string{"X.2.2"}, cat: MailboxFull},
	{name: "too-long-status", status: []string{"X.2.3"}, cat: MessageTooLarge},
	{name: "congestion-status", status: []string{"X.4.5"}, cat: RateLimited},
	{name: "routing-status", status: []string{"X.4.*"}, cat: Routing},
	{name: "protocol-status", status: []string{"X.5.*"}, cat: Other},
	{name: "storage-code", status: []string{"none"}, codes: []int{552}, cat: MailboxFull},
	{name: "null-mx-code", status: []string{"none"}, codes: []int{556}, cat: UnknownDomain},
	{name: "no-mail-code", status: []string{"none"}, codes: []int{521}, cat: Routing},
	{name: "smtp-auth-code", status: []string{"none"}, codes: []int{530, 534, 535, 538}, cat: AuthFailure},
}

// Greylisting is a plain "try again later" (Postgrey, Mimecast).
var greylisted = []string{"greylist*", "graylist*", "grey listed", "gray listed"}

// Protocol errors: the sender's SMTP dialogue, not the message or the
// address (Gmail's "SMTP protocol violation, no commands allowed to
// pipeline after STARTTLS" is not a TLS requirement).
var protocolErrors = []string{
	"protocol violation", "bad sequence of commands", "unrecognized command*",
	"unrecognised command*", "unimplemented command*", "command not implemented",
	"command unrecognized", "no commands allowed to pipeline",
}

// Routing, relaying, connections, loops and expiry, as MTAs report them
// about a delivery (Postfix, Exim, Exchange, this module's relay).
var routingTexts = []string{
	"relay access denied", "relaying denied", "relay denied", "relay not permitted",
	"relaying not permitted", "relaying disallowed", "relay disallowed", "unable to relay",
	"not permitted to relay", "relay prohibited", "we do not relay", "as a relay",
	"connection refused", "connection timed out", "timed out", "timeout",
	"no route to host", "network is unreachable", "host unreachable", "lost connection",
	"connection reset", "connection dropped", "unable to connect", "could not connect",
	"able to establish an smtp connection", "no mx host could be reached", "no usable mx",
	"mx lookup failed", "host not found try again", "malformed or unexpected name server reply",
	"all relevant mx records point to non existent hosts",
	"loops back to myself", "mail loop", "email loop", "routing loop", "loop detected",
	"mail forwarding loop", "hop count*", "too many hops", "hops", "too many received",
	"message expired", "retry timeout exceeded", "delivery time expired",
}

// TLS, demanded by the receiver or by our policy.
var tlsTexts = []string{
	"tls", "starttls", "requiretls", "ssl", "tlsa", "encryption", "mta sts", "mtasts",
	"dane", "certificate*", "dnssec",
}

// Public and private blocklists, named or described.
var blocklists = []string{
	"*spamhaus*", "spamcop", "barracuda*", "sorbs", "uceprotect*", "cloudmark",
	"senderscore", "sender score", "dnsbl*", "rbl*", "*blocklist*", "block list*",
	"block listed", "*blacklist*", "black list*", "black listed", "*denylist*", "deny list",
	"blocked using", "client host blocked",
}

// The sender's identity: SPF, DKIM, DMARC, ARC, reverse DNS, the sender's
// address and domain, SMTP AUTH.
var authTexts = []string{
	"*spf*", "*dkim*", "*dmarc*", "sender id", "senderid", "*authenticat*",
	"ptr", "ptr record*", "reverse dns", "reverse hostname", "rdns", "fcrdns",
	"cannot find your hostname", "reverse lookup", "dns look up", "dns lookup failure",
	"sender address rejected", "sender verify*", "sender verification", "domain of sender",
	"domain of the sender", "sender domain", "sender s domain", "sender address domain",
	"sender address does not exist", "sender does not exist", "unknown sender", "sender unknown",
	"invalid sender", "requires valid sender", "password*", "credentials",
	"arc validation", "anti spoof*", "spoofed message", "spoofed sender*", "spoofing",
}

// Rate limits, on the sender or on the recipient.
var rateTexts = []string{
	"rate limit*", "ratelimit*", "throttl*",
	"too many connections", "too many sessions", "too many concurrent", "too many simultaneous",
	"concurrent connections",
	"too many recipients", "too many rcpt*", "too many errors", "too many login*",
	"too many recent messages", "too many messages from", "too many messages in",
	"too many emails", "too many mails", "too many invalid recipients",
	"too many unknown recipients", "too many requests",
	"too fast", "too quickly", "too frequent*", "at a rate", "unusual rate", "unusual amount",
	"unexpected volume", "excessive volume", "high volume",
	"sending limit*", "relay limit*", "receive limit*", "recipient limit*", "message limit*",
	"connection limit*", "thread limit*", "exceeded the rate", "exceeded permitted limits",
	"per hour", "daily limit*", "limit reached", "quota for sending", "submission quota",
	"queue quota", "frequency limit*", "mail flood", "server busy", "busy",
	"per connection", "access denied please try again later", "deferred due to",
}

// The sender's reputation and the receiver's view of its network.
var reputationTexts = []string{
	"*reputation*", "complaint*", "open relay", "open proxy", "namespace mining",
	"dynamic ip*", "residential", "excessive unknown recipients", "permanently deferred",
	"bad outbound sender", "banned sending", "banned sender*", "banned ip*",
	"banned recipient*", "sender denied", "sender blocked",
	"sender address blocked", "blocked sender*", "not in whitelist",
	"not authorized to send email directly", "not authorized to send mail directly",
	"client host rejected", "ip address rejected",
}

// What the message contains or how it is formed.
var contentTexts = []string{
	"virus*", "malware", "malicious", "phish*", "infected", "ransomware",
	"content", "contents", "links within", "malicious link*", "suspicious link*",
	"url domain*", "url reputation", "malicious url*", "blocked url*",
	"attachment*", "file type*", "unsolicited", "*spam like", "spamlike",
	"looks like spam", "rejected as spam", "detected as spam", "identified as spam",
	"classified as spam", "considered spam", "considered as spam", "flagged as spam",
	"marked as spam", "suspicion of spam", "spam content", "spam message*", "spam detected",
	"spam filter*", "spam score", "spam signature*", "characteristics of spam",
	"rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc compliant", "rfc compliance",
	"header", "headers", "message is malformed", "malformed message", "malformed mime",
	"malformed header*", "bare line feed*", "bare lf", "invalid characters",
	"unicode character", "encoded word",
}

// The mailbox is over quota.
var fullTexts = []string{
	"over quota", "overquota", "quota exceeded", "exceeded quota", "exceeds quota",
	"quota violation", "quota limit*", "exceeded storage", "exceeds its storage",
	"storage quota", "mailbox full", "mailbox is full", "mailbox was full", "inbox is full",
	"box is full", "mailbox size limit", "out of storage", "storage space",
	"exhausted allowed storage", "too many messages on the server", "over the quota",
	"mailbox exceeds",
}

// The account exists but does not take mail now.
var disabledTexts = []string{
	"disabled", "inactive", "inactivity", "deactivated", "suspended", "not active",
	"frozen", "discontinued", "account expired", "mailbox expired", "locked",
}

// The message is too large.
var sizeTexts = []string{
	"message size", "mail size", "size of your message", "size of the message",
	"message is too large", "message too large", "too large", "too big", "message length",
	"size exceeds", "exceeds size", "size limit*", "maximum size", "maximum message size",
	"message exceeds", "message exceeded",
}

// The words the guarantee "never suppress on a text about spam, blocks,
// blocklists, reputation, policy, rate limits, SPF, DKIM or DMARC" rests
// on, with the groups above; they match inside longer words too
// ("antispam", "unblock", "mailpolicy"). Nothing before this rule can
// suppress.
var spamBlockPolicy = []string{"*spam*", "*block*", "*polic*"}

// Every other word of refusal. Two rules that can suppress come before
// them: Exchange's DBEB "Access denied" and RFC 5321's "553 ... mailbox
// name not allowed" (§4.2.2: the mailbox syntax is incorrect).
var policyTexts = []string{
	"prohibit*", "not allowed", "not permitted", "not authorized", "not authorised",
	"unauthori*", "access denied", "denied", "refused", "abuse", "violation", "forbidden",
	"suspicious", "junk",
}

// Exchange's "recipient not found" under X.1.10, which RFC 7505 gives to
// a null MX.
var exchangeNotFound = []string{
	"recipient not found", "recipnotfound", "recipientnotfound", "exrecipnotfound",
	"not found by smtp address lookup",
}

// Exchange Online's Directory Based Edge Blocking: "550 5.4.1 Recipient
// address rejected: Access denied. AS(201806281)" means the address does
// not exist in the tenant.
var directoryEdgeBlock = []string{"recipient address rejected access denied"}

// The domain does not exist or accepts no mail.
var unknownDomainTexts = []string{
	"host or domain name not found", "domain not found", "domain name not found",
	"domain does not exist", "domain doesn't exist", "no such domain", "unknown domain",
	"nxdomain", "does not accept mail", "accepts no mail", "null mx", "nullmx",
	"find the recipient domain",
}

// The mailbox does not exist.
var unknownUserTexts = []string{
	"no such user", "no such mailbox", "no such recipient", "no such address",
	"no such account", "no such local user",
	"user unknown", "unknown user", "unknown recipient", "recipient unknown",
	"address unknown", "unknown address", "mailbox unknown", "unknown mailbox",
	"addressee unknown", "unknown local part",
	"user not found", "recipient not found", "mailbox not found", "address not found",
	"account not found", "recipnotfound", "recipientnotfound",
	"does not exist", "doesn't exist", "no longer exists",
	"invalid recipient", "invalid mailbox", "invalid address", "invalid user",
	"not a valid mailbox", "not a valid recipient", "not a valid user",
	"no longer valid", "user not local",
	"mailbox has been deleted", "mailbox deleted", "mailbox removed", "mailbox closed",
	"account closed", "account has been closed", "user doesn't have a",
	"no mailbox here", "not our customer", "mailbox unallocated",
	"not listed in domino directory", "not listed in public name",
	"unrouteable address", "unroutable address",
}
