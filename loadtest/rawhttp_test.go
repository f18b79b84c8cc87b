package loadtest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The raw client sends what net/http's server reads as the request, reads answers of either
// framing (a length, or chunks), reuses its connection while the server keeps it, and opens a
// new one when the server closes it.
func TestRawClient(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || r.Host == "" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/echo":
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write(body)
		case "/big": // larger than the server's buffer: sent in chunks
			_, _ = w.Write(bytes.Repeat([]byte("x"), 64<<10))
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := newRawClient(u.Host, 4, 5*time.Second)
	defer c.close()
	var answer bytes.Buffer
	for i := range 3 {
		status, err := c.do(t.Context(), http.MethodPut, "/echo", []byte(`{"n":1}`), &answer)
		if err != nil || status != http.StatusTeapot || answer.String() != `{"n":1}` {
			t.Fatalf("echo %d: %d %q %v", i, status, answer.String(), err)
		}
	}
	status, err := c.do(t.Context(), http.MethodGet, "/big", nil, &answer)
	if err != nil || status != http.StatusOK || answer.Len() != 64<<10 || strings.Trim(answer.String(), "x") != "" {
		t.Fatalf("big: %d, %d bytes, %v", status, answer.Len(), err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for four requests, want 1 kept alive", n)
	}
	if _, err := c.do(t.Context(), http.MethodGet, "/close", nil, &answer); err != nil || answer.String() != "bye" {
		t.Fatalf("close: %q %v", answer.String(), err)
	}
	if _, err := c.do(t.Context(), http.MethodPut, "/echo", []byte(`{}`), &answer); err != nil {
		t.Fatalf("after the server closed: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a second one after the server closed the first", n)
	}
}
