// Package console is a web console for a relay.Client, which an
// application mounts in its own HTTP server the way net/http/pprof is
// mounted:
//
//	h, err := console.New(client, console.Options{
//		Path:      "/console/",
//		Authorize: console.BasicAuth("ops", password),
//	})
//	if err != nil { ... }
//	mux.Handle("/console/", h)
//
// Its pages are:
//
//   - Dashboard: the statistics of the last hour, day or week as charts
//     (sent, delivered, deferred, bounced, complained, opened, clicked),
//     the bounce and complaint rates against the thresholds mailbox
//     providers publish, the busiest and the most failing destinations
//     by domain and by MX host, the queue's depth and the age of its
//     oldest message, the alerts those figures raise, the alerts of
//     Client.Alerts firing now (Client.FiringAlerts) and the MX hosts
//     slowed down by a back-off rule or by push-back (Client.Backoffs).
//   - Queue: queued, deferred, in-flight and held messages, filtered by
//     state, domain, campaign and age, page by page, with bulk actions
//     (hold, release, cancel, retry now) on a selection or on everything
//     a filter matches.
//   - Message: the preview (the HTML part in a sandboxed frame, remote
//     images blocked until asked, tracking images removed), the text
//     part, the header, the attachments, the DKIM signatures and whether
//     they verify against the published keys, the warnings of package
//     lint (what spam filters would hold against it), the route the next attempt
//     would take (Client.PlanJob), and each recipient's state, history
//     and engagement.
//   - Approvals: messages held for review, by campaign, approved or
//     rejected by name (Client.Approve, Client.Reject).
//   - History: the records of finished messages, by recipient or
//     campaign.
//   - Suppressions: search, add, remove, export as CSV.
//   - Events: the latest events of this process, filtered, refreshed on
//     request or every few seconds.
//   - Preflight: a sending domain's DNS setup (Client.Preflight), checked
//     when the operator asks for a domain (never on another page, since it
//     makes DNS lookups): the findings by family, errors first, each with
//     its fix and the record to publish. The form offers the domains of
//     Client.Alerts.Preflight and of the Signer's keys.
//
// # Security
//
// Options.Authorize is required: New fails without it, since a console
// that sends mail is never open by default. It runs before every
// request, and its answer names the operator, whose name the history
// keeps for approvals and rejections. Every state-changing action is a
// POST that carries a CSRF token bound to a cookie and to the operator,
// and passes net/http's CrossOriginProtection (Sec-Fetch-Site and Origin).
// Every response forbids framing by other sites, scripts and sniffing,
// and sends no referrer to other sites; the pages need no JavaScript.
// The message preview is served as a sandboxed document of its own
// (Content-Security-Policy sandbox, no scripts, no same origin) that may
// load nothing but data: images, and remote images only when the
// operator asks; attachments are downloaded, never rendered.
//
// Everything a message or a server says (subjects, addresses, reply
// texts, file names) is escaped by html/template.
//
// Figures: the dashboard's charts and destinations are this process's
// Stats; with a History, the last day's totals of every instance sharing
// it (HistoryStats, read in the background at most once a minute) are
// shown beside them. Events are this process's.
package console
