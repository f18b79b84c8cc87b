package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The HTTP limits of the slow-client tests: far below the defaults, so that each test sees its
// limit act, and the bound within which a limit must have acted, far above each of them.
var slowClientLimits = map[string]string{
	"ATTRCACHE_HTTP_READ_HEADER_TIMEOUT": "300ms",
	"ATTRCACHE_HTTP_READ_TIMEOUT":        "600ms",
	"ATTRCACHE_HTTP_IDLE_TIMEOUT":        "400ms",
	"ATTRCACHE_HTTP_MAX_BODY_BYTES":      "1024",
}

const disconnectBound = 10 * time.Second

// trickleInterval is the pause between two bytes of a slow client.
const trickleInterval = 50 * time.Millisecond

// dial opens a raw TCP connection to s, closed at the end of the test.
func (s *servingTest) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("connecting to serve: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// trickle writes data to conn one byte every trickleInterval, in the background, until it is
// all written, a write fails or the test ends.
func trickle(t *testing.T, conn net.Conn, data string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		ticker := time.NewTicker(trickleInterval)
		defer ticker.Stop()
		for i := range len(data) {
			if _, err := conn.Write([]byte{data[i]}); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	})
}

// awaitDisconnect reads conn until the server closes it and returns what the server sent,
// failing the test if the connection is still open after disconnectBound.
func awaitDisconnect(t *testing.T, r io.Reader, conn net.Conn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(disconnectBound)); err != nil {
		t.Fatal(err)
	}
	received, err := io.ReadAll(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection is still open after %v (received %q), want it closed by the server", disconnectBound, received)
	}
	return string(received) // a reset also ends the connection
}

// slowBodyRequest is a request whose headers announce a body that then arrives slowly.
func slowBodyRequest(body string) string {
	return fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: attrcache\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		pathUserAttr, len(body))
}

func TestSlowClientsAreDisconnected(t *testing.T) {
	s := startServe(t, slowClientLimits)
	body := `{"ust": "` + strings.Repeat("u", 200) + `", "name": "n", "value": "v"}`
	tests := []struct {
		name     string
		prompt   string // written at once
		trickled string // then written one byte at a time
	}{
		{"headers slower than the read-header timeout", "", "GET /healthz HTTP/1.1\r\nHost: attrcache\r\nX-Slow: " + strings.Repeat("s", 500) + "\r\n\r\n"},
		{"a body slower than the read timeout", slowBodyRequest(body), body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := s.dial(t)
			if _, err := io.WriteString(conn, tt.prompt); err != nil {
				t.Fatalf("writing the start of the request: %v", err)
			}
			trickle(t, conn, tt.trickled)
			received := awaitDisconnect(t, conn, conn)
			if status, _, _ := strings.Cut(received, "\r\n"); strings.HasPrefix(status, "HTTP/1.1 5") {
				t.Errorf("the server answered %q, want no 5xx for a slow client", status)
			}
		})
	}
}

func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	s := startServe(t, slowClientLimits)
	conn := s.dial(t)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: attrcache\r\n\r\n"); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: HTTP %d, close %v; want 200 on a connection kept alive", resp.StatusCode, resp.Close)
	}
	if rest := awaitDisconnect(t, r, conn); rest != "" {
		t.Errorf("the idle connection received %q, want nothing before it is closed", rest)
	}
}

func TestBodyOverTheLimitIsRefused(t *testing.T) {
	s := startServe(t, slowClientLimits)
	status, answer := s.call(t, http.MethodPost, pathLogin,
		map[string]any{"username": strings.Repeat("u", 2048), "password": "Big-b0dy", "current_app": testApp})
	subStatus, _ := answer["sub_status"].([]any)
	cid, _ := answer["cid"].(string)
	if status != http.StatusRequestEntityTooLarge || answer["status"] != "error" || len(subStatus) != 1 || cid == "" {
		t.Errorf("a 2 KiB body over a 1 KiB limit: HTTP %d %v, want 413 with the error envelope (cid, status error, one sub_status)", status, answer)
	}
}

func TestSlowClientsDoNotPinTheServer(t *testing.T) {
	// The default timeouts, so that the slow clients stay connected throughout.
	s := startServe(t, nil)
	const slowClients, requests = 50, 20
	for range slowClients {
		conn := s.dial(t)
		if _, err := io.WriteString(conn, "G"); err != nil {
			t.Fatalf("starting a slow request: %v", err)
		}
		trickle(t, conn, "ET /healthz HTTP/1.1\r\nHost: attrcache\r\n"+strings.Repeat("X-Slow: s\r\n", 1000))
	}
	for i := range requests {
		for _, path := range []string{"/healthz", "/readyz"} {
			if status, body := s.get(t, path); status != http.StatusOK {
				t.Fatalf("request %d to %s beside %d slow clients: HTTP %d %s, want 200", i, path, slowClients, status, body)
			}
		}
	}
}
