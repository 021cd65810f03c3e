// Package browser gives tests a real web browser: Debian's headless
// Chromium, driven through the DevTools protocol by
// github.com/chromedp/chromedp, for pages that a handler serves on
// loopback.
//
//	ctx := browser.New(t)
//	err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.Click(chromedp.CSS("button")))
//	...
//	if errs := browser.ConsoleErrors(ctx); len(errs) > 0 {
//		t.Errorf("console errors: %q", errs)
//	}
//
// A test that calls New is skipped when Chromium is not installed; .ci/run
// installs it.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Timeout bounds a browser's whole life: New's context ends after it (or
// shortly before the test's own deadline, if that comes first), which
// stops the browser and fails every chromedp call still waiting, instead
// of letting a page that never loads hang the test.
const Timeout = 30 * time.Second

// debianPath is where Debian's chromium package installs the browser, for
// when it is not on PATH.
const debianPath = "/usr/bin/chromium"

// New starts a headless Chromium for t and returns the chromedp context of
// its one tab: pass it to chromedp.Do and chromedp.Run. The browser runs
// with a fresh profile under t.TempDir(), without sandbox, GPU, QUIC,
// background networking, component updates or sync, and resolves no host
// name but localhost, so that it reaches nothing but the loopback URLs
// the test opens (Debian's build would otherwise look up Google's
// sign-in host at start). It is stopped, with every process it started,
// when t ends, and at the latest after Timeout.
//
// New skips t when Chromium is not installed and fails it when the
// browser does not start.
func New(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if _, err := os.Stat(debianPath); err != nil {
			t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
		}
		path = debianPath
	}
	// t.TempDir first: its removal is then a cleanup that runs after the
	// browser's, once nothing writes there any more.
	profile := t.TempDir()

	deadline := time.Now().Add(Timeout)
	if d, ok := t.Deadline(); ok && d.Add(-2*time.Second).Before(deadline) {
		deadline = d.Add(-2 * time.Second)
	}
	life, stopLife := context.WithDeadline(context.Background(), deadline)

	var out lockedBuffer // the browser's stderr, for a failure to start
	alloc, stopAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// No DNS: every name but loopback's fails at once, in the browser.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(&out),
	)
	rec := &recorder{}
	tab, stopTab := chromedp.NewContext(alloc, chromedp.WithListener(rec.listen))
	t.Cleanup(func() {
		stopTab()   // closes the tab and, as the first one, the browser
		stopAlloc() // waits for the browser process to exit
		stopLife()
		stopLeftovers(profile)
	})
	// Start the browser now, bound to life, so that a broken installation
	// fails here rather than in the test's first step.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, out.String())
	}
	return context.WithValue(tab, recorderKey{}, rec)
}

// ConsoleErrors lists what the pages of New's tab have reported as errors
// so far: console.error and failed console.assert calls, uncaught
// exceptions and unhandled rejections, and the browser's own error
// entries (a resource that failed to load, a Content-Security-Policy
// violation), each with the URL it came from when known.
func ConsoleErrors(ctx context.Context) []string {
	rec, ok := ctx.Value(recorderKey{}).(*recorder)
	if !ok {
		panic("browser.ConsoleErrors: not a context from browser.New")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.errors...)
}

type recorderKey struct{}

// recorder keeps a tab's errors. Its listen runs in the tab's event loop,
// from the first event on, and returns at once.
type recorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *recorder) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, remoteText(a))
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			f := st.CallFrames[0]
			msg += fmt.Sprintf(" (%s:%d)", f.URL, f.LineNumber+1)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil {
			desc, _, _ := strings.Cut(remoteText(d.Exception), "\n")
			msg += " " + desc
		}
		if d.URL != "" {
			msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError {
			return
		}
		msg = string(e.Source) + " error: " + e.Text
		if e.URL != "" {
			msg += " (" + e.URL + ")"
		}
	default:
		return
	}
	r.mu.Lock()
	r.errors = append(r.errors, msg)
	r.mu.Unlock()
}

// remoteText is a console argument as text: a string as it is, another
// value as JSON or as the browser describes it.
func remoteText(o *runtime.RemoteObject) string {
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}

// stopLeftovers kills the processes that still run with profile as their
// user data directory: Chromium passes it to every helper process it
// starts (zygote, renderers, network service), and one can outlive the
// main process for a moment, or write into the directory as t.TempDir
// removes it. The directory is the test's own, so these are processes the
// test started. Without /proc (not Linux) there is nothing to look at and
// the helpers are left to exit by themselves when the main process has.
func stopLeftovers(profile string) {
	want := []byte("--user-data-dir=" + profile)
	for quiet, deadline := 0, time.Now().Add(5*time.Second); quiet < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					if p, err := os.FindProcess(pid); err == nil {
						p.Kill()
					}
					found++
					break
				}
			}
		}
		if found == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the browser's output goroutine
// and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
