package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

var testSecret = []byte("0123456789abcdef")

func TestRunRefusesConfig(t *testing.T) {
	ok := Endpoint{URL: "https://hooks.example.com/in?token=x", Secrets: [][]byte{testSecret}}
	with := func(f func(*Endpoint)) []Endpoint {
		e := ok
		f(&e)
		return []Endpoint{e}
	}
	url := func(u string) []Endpoint { return with(func(e *Endpoint) { e.URL = u }) }
	store := &queue.MemoryStore{}
	tests := []struct {
		name string
		d    *Dispatcher
		want error
	}{
		{"no store", &Dispatcher{Endpoints: []Endpoint{ok}}, ErrInvalidConfig},
		{"no endpoints", &Dispatcher{Store: store}, ErrInvalidConfig},
		{"negative BatchSize", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, BatchSize: -1}, ErrInvalidConfig},
		{"huge BatchSize", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, BatchSize: MaxBatchSize + 1}, ErrInvalidConfig},
		{"negative MaxBatchBytes", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, MaxBatchBytes: -1}, ErrInvalidConfig},
		{"huge MaxBatchBytes", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, MaxBatchBytes: MaxMaxBatchBytes + 1}, ErrInvalidConfig},
		{"negative Timeout", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, Timeout: -1}, ErrInvalidConfig},
		{"negative MaxAge", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, MaxAge: -1}, ErrInvalidConfig},
		{"negative PollInterval", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, PollInterval: -1}, ErrInvalidConfig},
		{"Owner with a newline", &Dispatcher{Store: store, Endpoints: []Endpoint{ok}, Owner: "a\nb"}, ErrInvalidConfig},

		{"no URL", &Dispatcher{Store: store, Endpoints: url("")}, ErrInvalidEndpoint},
		{"ftp", &Dispatcher{Store: store, Endpoints: url("ftp://hooks.example.com/")}, ErrInvalidEndpoint},
		{"no scheme", &Dispatcher{Store: store, Endpoints: url("hooks.example.com/in")}, ErrInvalidEndpoint},
		{"scheme-relative", &Dispatcher{Store: store, Endpoints: url("//hooks.example.com/in")}, ErrInvalidEndpoint},
		{"no host", &Dispatcher{Store: store, Endpoints: url("https:///in")}, ErrInvalidEndpoint},
		{"port only", &Dispatcher{Store: store, Endpoints: url("https://:443/in")}, ErrInvalidEndpoint},
		{"opaque", &Dispatcher{Store: store, Endpoints: url("https:hooks.example.com")}, ErrInvalidEndpoint},
		{"userinfo", &Dispatcher{Store: store, Endpoints: url("https://user:pass@hooks.example.com/")}, ErrInvalidEndpoint},
		{"user only", &Dispatcher{Store: store, Endpoints: url("https://user@hooks.example.com/")}, ErrInvalidEndpoint},
		{"fragment", &Dispatcher{Store: store, Endpoints: url("https://hooks.example.com/in#x")}, ErrInvalidEndpoint},
		{"empty fragment", &Dispatcher{Store: store, Endpoints: url("https://hooks.example.com/in#")}, ErrInvalidEndpoint},
		{"space", &Dispatcher{Store: store, Endpoints: url("https://hooks.example.com/a b")}, ErrInvalidEndpoint},
		{"CRLF", &Dispatcher{Store: store, Endpoints: url("https://hooks.example.com/a\r\nX: y")}, ErrInvalidEndpoint},
		{"bad port", &Dispatcher{Store: store, Endpoints: url("https://hooks.example.com:x/")}, ErrInvalidEndpoint},
		{"no secret", &Dispatcher{Store: store, Endpoints: with(func(e *Endpoint) { e.Secrets = nil })}, ErrInvalidEndpoint},
		{"short secret", &Dispatcher{Store: store, Endpoints: with(func(e *Endpoint) { e.Secrets = [][]byte{[]byte("short")} })}, ErrInvalidEndpoint},
		{"short second secret", &Dispatcher{Store: store, Endpoints: with(func(e *Endpoint) { e.Secrets = [][]byte{testSecret, {}} })}, ErrInvalidEndpoint},
		{"name with a tab", &Dispatcher{Store: store, Endpoints: with(func(e *Endpoint) { e.Name = "a\tb" })}, ErrInvalidEndpoint},
		{"long name", &Dispatcher{Store: store, Endpoints: with(func(e *Endpoint) { e.Name = strings.Repeat("n", queue.MaxEndpointLen+1) })}, ErrInvalidEndpoint},
		{"same URL twice", &Dispatcher{Store: store, Endpoints: []Endpoint{ok, ok}}, ErrInvalidEndpoint},
		{"name of another's URL", &Dispatcher{Store: store, Endpoints: []Endpoint{ok, {Name: ok.URL, URL: "https://b.example/", Secrets: ok.Secrets}}}, ErrInvalidEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A live context: Run must refuse before it starts anything.
			err := tt.d.Run(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "webhook: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestRunAcceptsConfig(t *testing.T) {
	for _, u := range []string{"https://hooks.example.com/in?token=x", "http://10.0.0.1:8080/", "HTTPS://[2001:db8::1]/x", "http://hooks.example.com"} {
		d := &Dispatcher{Store: &queue.MemoryStore{}, Endpoints: []Endpoint{
			{URL: u, Secrets: [][]byte{testSecret}},
			{Name: "second", URL: u, Secrets: [][]byte{testSecret, []byte("fedcba9876543210")}},
		}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run(%s) = %v, want context.Canceled", u, err)
		}
	}
}

func TestRunTwice(t *testing.T) {
	store := &countingStore{MemoryStore: &queue.MemoryStore{}}
	d := &Dispatcher{Store: store, Endpoints: []Endpoint{{URL: "https://hooks.example.com/", Secrets: [][]byte{testSecret}}}, PollInterval: 1 << 40}
	stop := run(t, d)
	waitFor(t, "the first claim", func() bool { return store.claims.Load() > 0 })
	if err := d.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	// Once the first has returned, Run can be called again.
	stop = run(t, d)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after Run = %v, want context.Canceled", err)
	}
}
