package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// ioTimeout bounds every read and write of the tests, so that a broken proxy fails a test
// instead of hanging it; it is never what a test asserts on.
const ioTimeout = 10 * time.Second

// startEcho starts a line echo server on 127.0.0.1 and returns its address.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

// startProxy starts a proxy in front of a new echo server.
func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Listen(startEcho(t))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// echoConn is a client connection through the proxy.
type echoConn struct {
	net.Conn
	lines *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *echoConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), ioTimeout)
	if err != nil {
		t.Fatalf("dialling the proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &echoConn{Conn: conn, lines: bufio.NewReader(conn)}
}

// roundTrip sends line and returns what comes back, or the error that ended the exchange.
func (c *echoConn) roundTrip(line string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.lines.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// wantEcho fails the test unless line comes back through c.
func wantEcho(t *testing.T, c *echoConn, line string) {
	t.Helper()
	got, err := c.roundTrip(line, ioTimeout)
	if err != nil || got != line {
		t.Fatalf("round trip of %q: got %q, %v; want %q, nil", line, got, err, line)
	}
}

// wantBroken fails the test unless the exchange of a line through c fails without timing out.
func wantBroken(t *testing.T, c *echoConn) {
	t.Helper()
	got, err := c.roundTrip("after the fault", ioTimeout)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip through a faulty proxy: got %q, %v; want a connection error", got, err)
	}
}

// wantRefused fails the test unless a new connection through p is reset: at once, when the
// reset beats the end of the handshake, or at its first exchange.
func wantRefused(t *testing.T, p *Proxy) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), ioTimeout)
	if err != nil {
		if netErr, ok := errors.AsType[net.Error](err); ok && netErr.Timeout() {
			t.Fatalf("dialling a proxy that is down: %v, want a reset", err)
		}
		return
	}
	t.Cleanup(func() { conn.Close() })
	wantBroken(t, &echoConn{Conn: conn, lines: bufio.NewReader(conn)})
}

func TestForwards(t *testing.T) {
	p := startProxy(t)
	first, second := dial(t, p), dial(t, p)
	large := strings.Repeat("x", 3*chunkSize)
	for _, line := range []string{"hello", large, "again"} {
		wantEcho(t, first, line)
		wantEcho(t, second, line)
	}
	if got := p.Accepted(); got != 2 {
		t.Errorf("Accepted() = %d, want 2", got)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name string
		// fault breaks the connection in flight; heal, if not nil, undoes it.
		fault, heal func(*Proxy)
		// newConnWorks says whether a connection made after fault (and before heal) works.
		newConnWorks bool
		wantRefused  int64
	}{
		{name: "CutAll", fault: (*Proxy).CutAll, newConnWorks: true},
		{name: "Down then Up", fault: (*Proxy).Down, heal: (*Proxy).Up, newConnWorks: false, wantRefused: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t)
			inFlight := dial(t, p)
			wantEcho(t, inFlight, "before")

			tt.fault(p)
			wantBroken(t, inFlight)
			if tt.newConnWorks {
				wantEcho(t, dial(t, p), "during")
			} else {
				wantRefused(t, p)
			}
			if got := p.Refused(); got != tt.wantRefused {
				t.Errorf("Refused() = %d, want %d", got, tt.wantRefused)
			}

			if tt.heal != nil {
				tt.heal(p)
				wantEcho(t, dial(t, p), "after")
			}
		})
	}
}

func TestSlowHoldsDataBackUntilCut(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	wantEcho(t, c, "fast")

	p.Slow(time.Hour)
	// Nothing can cross an hour's delay within the deadline, however loaded the machine is.
	if got, err := c.roundTrip("held", 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip while slowed by an hour: got %q, %v; want a deadline error", got, err)
	}
	p.CutAll()
	p.Slow(0)
	wantEcho(t, dial(t, p), "fast again")
}

func TestSlowStillDelivers(t *testing.T) {
	p := startProxy(t)
	p.Slow(time.Millisecond)
	c := dial(t, p)
	for _, line := range []string{"one", strings.Repeat("y", 2*chunkSize), "three"} {
		wantEcho(t, c, line)
	}
}

func TestHalfCloseReachesTarget(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "last words"); err != nil {
		t.Fatalf("writing: %v", err)
	}
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(c.lines)
	if err != nil || string(got) != "last words" {
		t.Fatalf("after a half close: got %q, %v; want %q and an orderly end", got, err, "last words")
	}
}

func TestCloseEndsConnections(t *testing.T) {
	p, err := Listen(startEcho(t))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	c := dial(t, p)
	wantEcho(t, c, "before close")
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantBroken(t, c)
	if conn, err := net.DialTimeout("tcp", p.Addr(), ioTimeout); err == nil {
		conn.Close()
		t.Fatalf("dialling a closed proxy: got a connection, want an error")
	}
}
