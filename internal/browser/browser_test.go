package browser_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxrelay/mxrelay/internal/browser"
)

// ConsoleErrors sees what a broken page reports: console.error, an
// uncaught exception, and a script the Content-Security-Policy blocks.
func TestConsoleErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			io.WriteString(w, `<!doctype html><link rel="icon" href="data:,"><title>ok</title><p id="ok">fine</p>`)
		case "/broken":
			w.Header().Set("Content-Security-Policy", "script-src 'self'")
			io.WriteString(w, `<!doctype html><link rel="icon" href="data:,"><title>broken</title>
<script src="/app.js"></script>
<script>document.title = "inline ran"</script>
<p id="done">done</p>`)
		case "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			io.WriteString(w, `console.error("boom", 42); setTimeout(() => { throw new Error("kaput") });`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := browser.New(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("ok"))); err != nil {
		t.Fatal(err)
	}
	if errs := browser.ConsoleErrors(ctx); len(errs) != 0 {
		t.Fatalf("a clean page reported %q", errs)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/broken"), chromedp.WaitVisible(chromedp.ID("done"))); err != nil {
		t.Fatal(err)
	}
	var got string
	for range 50 { // the exception is thrown from a timer
		if got = strings.Join(browser.ConsoleErrors(ctx), "\n"); strings.Contains(got, "kaput") {
			break
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(20*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"console.error: boom 42 (" + srv.URL + "/app.js:1)", "exception: Uncaught Error: kaput", "Content Security Policy"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

// Every process of the browser is gone once the test that started it has
// ended.
func TestStopped(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc to look for processes in")
	}
	var profile string
	var pid int
	t.Run("browse", func(t *testing.T) {
		ctx := browser.New(t)
		pid = chromedp.FromContext(ctx).Browser.Process().Pid
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if dir, ok := strings.CutPrefix(string(arg), "--user-data-dir="); ok {
				profile = dir
			}
		}
		if profile == "" {
			t.Fatalf("no --user-data-dir in %q", cmdline)
		}
	})
	if profile == "" {
		t.Skip("the browser did not run")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte("--user-data-dir="+profile+"\x00")) {
			t.Errorf("process %s still runs: %q", e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Errorf("the profile %s is still there: %v", profile, err)
	}
}
