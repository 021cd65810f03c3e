// Command httpservice is an HTTP service that sends mail from a handler:
// POST /send with a JSON body, and the answer is the per-recipient result
// as JSON.
//
//	go run ./examples/httpservice -addr 127.0.0.1:8080
//	curl -d '{"from":"me@example.org","to":["you@example.net"],"subject":"Hi","text":"Hello"}' \
//	    127.0.0.1:8080/send
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"net/mail"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay"
)

// request is the JSON a client posts.
type request struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
}

// handler sends with c (relay.DefaultClient when nil).
type handler struct{ c *relay.Client }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	m, err := req.message()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := h.c
	if c == nil {
		c = relay.DefaultClient
	}
	res, err := c.Send(r.Context(), m)
	if res == nil {
		// Nothing was attempted: the message itself is wrong.
		status := http.StatusInternalServerError
		if errors.Is(err, relay.ErrInvalidMessage) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if res.Count(relay.Delivered) != len(res.Recipients) {
		w.WriteHeader(http.StatusMultiStatus)
	}
	json.NewEncoder(w).Encode(res)
}

func (req *request) message() (*mime.Message, error) {
	from, err := mail.ParseAddress(req.From)
	if err != nil {
		return nil, err
	}
	m := &mime.Message{From: *from, Subject: req.Subject, Text: req.Text, HTML: req.HTML}
	for _, s := range req.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, err
		}
		m.To = append(m.To, *a)
	}
	return m, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.Handle("/send", handler{})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
