package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/relay"
)

// Options configure a console.
type Options struct {
	// Authorize decides whether r may use the console and names the
	// operator it acts for (kept in the history of approvals and
	// rejections, and shown on every page). It runs before every
	// request. When it returns false the console answers 403 Forbidden,
	// unless Authorize has written a response itself (BasicAuth answers
	// 401 with a challenge; another may redirect to a login page). The
	// name must be 1 to 200 bytes of printable UTF-8. Required: New fails
	// without it.
	Authorize func(w http.ResponseWriter, r *http.Request) (operator string, ok bool)
	// Path is where the console is mounted, with a trailing slash:
	// "/console/" serves the dashboard at /console/ and the queue at
	// /console/queue. "" → "/".
	Path string
	// Title names the console in the page titles and the header. "" →
	// "mxrelay console".
	Title string
	// ReadOnly shows everything and changes nothing: no forms, and every
	// POST is refused with 403.
	ReadOnly bool
	// Logger receives a record of every action taken (who, what, which
	// messages). nil → silent.
	Logger *slog.Logger
}

//go:embed templates static
var files embed.FS

// server is the console, as New returns it.
type server struct {
	c     *relay.Client
	o     Options
	base  string // Options.Path
	mux   *http.ServeMux
	tmpl  *template.Template
	key   []byte // the CSRF token key
	cop   *http.CrossOriginProtection
	style []byte

	histMu   sync.Mutex          // guards the shared figures (sharedDay)
	histAt   time.Time           // when they were last computed; zero: never
	histDay  *relay.HistoryStats // the last figures, or nil
	histErr  error               // the last computation's error
	histRun  chan struct{}       // closed when the computation running ends; nil: none
	now      func() time.Time
	readonly bool
}

// ErrNoAuthorize: New was given no Options.Authorize.
var ErrNoAuthorize = errors.New("console: Options.Authorize is required")

// New returns the console of c. It fails with ErrNoAuthorize without
// Options.Authorize, and for a nil client or a Path that is not an
// absolute path ending in "/".
func New(c *relay.Client, o Options) (http.Handler, error) {
	if c == nil {
		return nil, errors.New("console: nil relay.Client")
	}
	if o.Authorize == nil {
		return nil, ErrNoAuthorize
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if !strings.HasPrefix(o.Path, "/") || !strings.HasSuffix(o.Path, "/") || strings.ContainsAny(o.Path, "{}\r\n\t ") {
		return nil, fmt.Errorf("console: Path %q: want an absolute path ending in /", o.Path)
	}
	if o.Title == "" {
		o.Title = "mxrelay console"
	}
	if strings.ContainsAny(o.Title, "\r\n") {
		return nil, fmt.Errorf("console: Title %q holds a line break", o.Title)
	}
	k := &server{c: c, o: o, base: o.Path, cop: http.NewCrossOriginProtection(), now: time.Now, readonly: o.ReadOnly}
	// The CSRF key: from LinkKeys when there are some, so that every
	// instance behind a load balancer accepts the others' tokens; else
	// random, for this process.
	if len(c.LinkKeys) > 0 && len(c.LinkKeys[0]) > 0 {
		m := hmac.New(sha256.New, c.LinkKeys[0])
		m.Write([]byte("mxrelay console csrf v1"))
		k.key = m.Sum(nil)
	} else {
		k.key = make([]byte, 32)
		rand.Read(k.key)
	}
	var err error
	k.tmpl, err = template.New("").Funcs(k.funcs()).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	if o.ReadOnly {
		// Nothing to post: the lists of the queue and approvals pages,
		// which sit in a form, carry no token either. (An empty body
		// would not replace the definition: text/template keeps a
		// non-empty one.)
		template.Must(k.tmpl.New("csrf").Parse(`{{""}}`))
	}
	if k.style, err = fs.ReadFile(files, "static/style.css"); err != nil {
		return nil, err
	}
	k.routes()
	return k, nil
}

func (k *server) routes() {
	m := http.NewServeMux()
	b := k.base
	get := func(p string, h func(w http.ResponseWriter, r *http.Request, op string)) {
		m.HandleFunc("GET "+b+p, k.page(h))
	}
	post := func(p string, h func(w http.ResponseWriter, r *http.Request, op string)) {
		m.HandleFunc("POST "+b+p, k.action(h))
	}
	get("{$}", k.dashboard)
	get("queue", k.queuePage)
	post("queue", k.queueAction)
	get("message/{id}", k.messagePage)
	post("message/{id}", k.messageAction)
	get("message/{id}/preview", k.preview)
	get("message/{id}/part/{n}", k.part)
	get("approvals", k.approvalsPage)
	post("approvals", k.approvalsAction)
	get("history", k.historyPage)
	get("suppressions", k.suppressionsPage)
	get("suppressions.csv", k.suppressionsCSV)
	post("suppressions", k.suppressionsAction)
	get("events", k.eventsPage)
	get("preflight", k.preflightPage)
	m.HandleFunc("GET "+b+"static/style.css", k.page(func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "private, max-age=3600")
		w.Write(k.style)
	}))
	k.mux = m
}

// pageCSP is the Content-Security-Policy of every console response but
// the preview: nothing from elsewhere, no script at all, frames only of
// the console's own previews (which also keeps a link followed inside a
// preview from loading another site), no framing of the console.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves the console's pages under Options.Path. Every
// response, errors and refusals included, carries the security headers;
// every request is authorised first.
func (k *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	rw := &watchWriter{ResponseWriter: w}
	op, ok := k.o.Authorize(rw, r)
	if !ok {
		if !rw.wrote {
			http.Error(w, "forbidden", http.StatusForbidden)
		}
		return
	}
	if err := relay.CheckOperator(op); err != nil {
		k.log("console: Authorize returned an unusable operator name", "err", err)
		http.Error(w, "forbidden: the operator name is not usable", http.StatusForbidden)
		return
	}
	r = r.WithContext(withOperator(r.Context(), op))
	k.mux.ServeHTTP(w, r)
}

// watchWriter notes whether Authorize wrote a response.
type watchWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *watchWriter) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *watchWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// page wraps a GET handler: it sets the CSRF cookie the forms need.
func (k *server) page(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op := operatorOf(r.Context())
		k.ensureCookie(w, r)
		h(w, r, op)
	}
}

// action wraps a POST handler: read-only refusal, cross-origin
// protection, the CSRF token.
func (k *server) action(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op := operatorOf(r.Context())
		if k.readonly {
			http.Error(w, "forbidden: this console is read-only", http.StatusForbidden)
			return
		}
		if err := k.cop.Check(r); err != nil {
			http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !k.checkToken(r, op) {
			http.Error(w, "forbidden: missing or stale form token; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, op)
	}
}

// maxForm bounds a POSTed form: a selection of a few thousand ids.
const maxForm = 1 << 20

// view is what every page template is given.
type view struct {
	Title, Page, Base, Operator, Token string
	Console                            string // Options.Title
	ReadOnly                           bool
	Flash, Error                       string
	Data                               any
}

// render writes the page name with data, buffered so that a template
// error is a clean 500.
func (k *server) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	k.renderStatus(w, r, http.StatusOK, name, title, data)
}

// renderStatus is render with a status code.
func (k *server) renderStatus(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	v := view{Title: title, Console: k.o.Title, Page: name, Base: k.base, Operator: operatorOf(r.Context()),
		Token: k.token(r), ReadOnly: k.readonly, Data: data,
		Flash: r.URL.Query().Get("done"), Error: r.URL.Query().Get("failed")}
	var buf bytes.Buffer
	if err := k.tmpl.ExecuteTemplate(&buf, name+".html", v); err != nil {
		k.log("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// fail answers a request with a plain error page.
func (k *server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	k.renderStatus(w, r, code, "error", http.StatusText(code), msg)
}

// back redirects after an action (POST, redirect, GET), to the page in
// the form's "back" field when it is one of the console's, with a
// message for the page.
func (k *server) back(w http.ResponseWriter, r *http.Request, fallback, done, failed string) {
	to := r.PostFormValue("back")
	// Browsers drop tabs and line breaks from a URL and read a backslash
	// as a slash: under Path "/", "/\t/evil.example" would leave the
	// console. No control character, no backslash.
	if !strings.HasPrefix(to, k.base) || strings.HasPrefix(to, "//") || strings.ContainsFunc(to, func(r rune) bool {
		return r == '\\' || r < ' ' || r == 0x7f
	}) {
		to = fallback
	}
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	q := make([]string, 0, 2)
	if done != "" {
		q = append(q, "done="+url.QueryEscape(done))
	}
	if failed != "" {
		q = append(q, "failed="+url.QueryEscape(failed))
	}
	if len(q) > 0 {
		to += sep + strings.Join(q, "&")
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (k *server) log(msg string, args ...any) {
	if k.o.Logger != nil {
		k.o.Logger.Warn(msg, args...)
	}
}

func (k *server) logAction(op, what string, args ...any) {
	if k.o.Logger != nil {
		k.o.Logger.Info("console: "+what, append([]any{"operator", op}, args...)...)
	}
}
