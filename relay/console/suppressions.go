package console

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

type suppressionsData struct {
	Q, Scope, Reason string
	Reasons          []string
	Rows             []queue.Suppression
	NextAddr         string
	NextScope        string
	Query            string
	None             bool
	Err              string
	Hashed           bool
}

var reasons = []string{"unsubscribed", "complained", "hard-bounced", "manual"}

// suppressionQuery is the page's filter: q is an address or the start
// of one (a prefix search, since entries are kept in address order).
type suppressionQuery struct {
	q, scope string
	reason   queue.SuppressReason
}

func suppressionQueryOf(v url.Values) suppressionQuery {
	sq := suppressionQuery{q: strings.ToLower(strings.TrimSpace(v.Get("q"))), scope: strings.TrimSpace(v.Get("scope"))}
	_ = sq.reason.UnmarshalText([]byte(v.Get("reason")))
	return sq
}

// list reads up to limit entries after the cursor that match sq.
func (k *server) listSuppressions(r *http.Request, sq suppressionQuery, afterAddr, afterScope string, limit int) ([]queue.Suppression, bool, error) {
	f := queue.SuppressionFilter{Reason: sq.reason, Limit: limit + 1, AfterAddress: afterAddr, AfterScope: afterScope}
	switch sq.scope {
	case "":
	case "(all mail)":
		f.AllMail = true
	default:
		f.Scope = sq.scope
	}
	var out []queue.Suppression
	if sq.q != "" && afterAddr == "" && afterScope == "" {
		// The entry for q itself (an exact address) comes before every
		// entry that follows it in order; read it first.
		ex := f
		ex.Address, ex.AfterAddress, ex.Limit = sq.q, "", limit+1
		got, err := k.c.Suppressions.Suppressions(r.Context(), ex)
		if err != nil {
			return nil, false, err
		}
		out = append(out, got...)
		f.AfterAddress, f.AfterScope = sq.q, "\U0010FFFF"
	}
	got, err := k.c.Suppressions.Suppressions(r.Context(), f)
	if err != nil {
		return nil, false, err
	}
	for _, s := range got {
		if sq.q != "" && !strings.HasPrefix(s.Address, sq.q) {
			break
		}
		out = append(out, s)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

func (k *server) suppressionsPage(w http.ResponseWriter, r *http.Request, _ string) {
	v := r.URL.Query()
	sq := suppressionQueryOf(v)
	d := &suppressionsData{Q: sq.q, Scope: sq.scope, Reasons: reasons, Hashed: len(k.c.Suppression.HashKey) > 0}
	if sq.reason != 0 {
		d.Reason = sq.reason.String()
	}
	qv := url.Values{}
	for key, s := range map[string]string{"q": d.Q, "scope": d.Scope, "reason": d.Reason} {
		if s != "" {
			qv.Set(key, s)
		}
	}
	d.Query = qv.Encode()
	if k.c.Suppressions == nil {
		d.None = true
		k.render(w, r, "suppressions", "Suppressions", d)
		return
	}
	rows, more, err := k.listSuppressions(r, sq, v.Get("after"), v.Get("afterscope"), pageSize)
	if err != nil {
		d.Err = err.Error()
	}
	d.Rows = rows
	if more && len(rows) > 0 {
		d.NextAddr, d.NextScope = rows[len(rows)-1].Address, rows[len(rows)-1].Scope
	}
	k.render(w, r, "suppressions", "Suppressions", d)
}

// csvMax bounds the entries one export writes.
const csvMax = 1_000_000

func (k *server) suppressionsCSV(w http.ResponseWriter, r *http.Request, _ string) {
	if k.c.Suppressions == nil {
		k.fail(w, r, http.StatusNotFound, "this client has no suppression list")
		return
	}
	sq := suppressionQueryOf(r.URL.Query())
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="suppressions.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"address", "list", "reason", "source", "created", "expires"})
	afterAddr, afterScope := "", ""
	for n := 0; n < csvMax; {
		rows, more, err := k.listSuppressions(r, sq, afterAddr, afterScope, 1000)
		if err != nil {
			// The header is sent: say so in the file, where a reader sees it.
			cw.Write([]string{"# export failed: " + err.Error()})
			break
		}
		for _, s := range rows {
			exp := ""
			if !s.Expires.IsZero() {
				exp = s.Expires.UTC().Format(time.RFC3339)
			}
			cw.Write([]string{cell(s.Address), cell(s.Scope), s.Reason.String(), cell(s.Source), s.Created.UTC().Format(time.RFC3339), exp})
		}
		n += len(rows)
		if !more || len(rows) == 0 {
			break
		}
		afterAddr, afterScope = rows[len(rows)-1].Address, rows[len(rows)-1].Scope
	}
	cw.Flush()
}

// cell keeps a spreadsheet from reading a field as a formula (CSV
// injection): one that starts with =, +, -, @, a tab or a CR gets a
// leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// suppressionsAction adds or removes an entry.
func (k *server) suppressionsAction(w http.ResponseWriter, r *http.Request, op string) {
	back := k.base + "suppressions"
	if k.c.Suppressions == nil {
		k.back(w, r, back, "", "this client has no suppression list")
		return
	}
	addr := strings.TrimSpace(r.PostFormValue("address"))
	list := strings.TrimSpace(r.PostFormValue("list"))
	switch r.PostFormValue("action") {
	case "add":
		var reason queue.SuppressReason
		if err := reason.UnmarshalText([]byte(r.PostFormValue("reason"))); err != nil {
			reason = queue.Manual
		}
		if err := k.c.Suppress(r.Context(), addr, list, reason, "console: "+op); err != nil {
			k.back(w, r, back, "", "could not suppress "+addr+": "+err.Error())
			return
		}
		k.logAction(op, "suppress", "address", addr, "list", list)
		k.back(w, r, back, "suppressed "+addr+listLabel(list), "")
	case "remove":
		var ok bool
		var err error
		if scope := r.PostFormValue("scope"); r.PostFormValue("stored") == "1" {
			// An entry as listed: its stored address (perhaps a hash).
			ok, err = k.c.Suppressions.Unsuppress(r.Context(), addr, scope)
			list = scope
		} else {
			ok, err = k.c.Unsuppress(r.Context(), addr, list)
		}
		switch {
		case err != nil:
			k.back(w, r, back, "", "could not remove "+addr+": "+err.Error())
		case !ok:
			k.back(w, r, back, "", addr+" was not suppressed"+listLabel(list))
		default:
			k.logAction(op, "unsuppress", "address", addr, "list", list)
			k.back(w, r, back, "removed "+addr+listLabel(list)+" from the suppression list", "")
		}
	default:
		k.back(w, r, back, "", "unknown action")
	}
}

func listLabel(list string) string {
	if list == "" {
		return " (all mail)"
	}
	return " (list " + list + ")"
}
