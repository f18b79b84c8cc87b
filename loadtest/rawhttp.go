package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// rawClient sends the load's requests over keep-alive connections of its own: each request is
// written by hand in one write, and its answer read with http.ReadResponse, which costs the load
// generator less CPU than net/http's Transport (README's benchmark notes give the figures).
// Plain http only (an https target uses the configured *http.Client).
type rawClient struct {
	addr    string // host:port to dial
	host    string // the Host header
	timeout time.Duration
	idle    chan *rawConn
}

// rawConn is one keep-alive connection with its reader and a buffer for requests.
type rawConn struct {
	net.Conn
	r   *bufio.Reader
	req []byte
}

// newRawClient returns a client of the target at host (host:port), keeping up to conns idle
// connections, and giving up on a request after timeout (0: never).
func newRawClient(host string, conns int, timeout time.Duration) *rawClient {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "80")
	}
	return &rawClient{addr: addr, host: host, timeout: timeout, idle: make(chan *rawConn, conns)}
}

// do sends method path with the JSON body and reads the answer's body into answer; it returns
// the answer's HTTP status.
func (c *rawClient) do(ctx context.Context, method, path string, body []byte, answer *bytes.Buffer) (int, error) {
	conn, err := c.conn(ctx)
	if err != nil {
		return 0, err
	}
	status, keep, err := c.exchange(conn, method, path, body, answer)
	if err != nil || !keep {
		_ = conn.Close()
		return status, err
	}
	select {
	case c.idle <- conn:
	default:
		_ = conn.Close()
	}
	return status, nil
}

// conn returns an idle connection, or a new one.
func (c *rawClient) conn(ctx context.Context) (*rawConn, error) {
	select {
	case conn := <-c.idle:
		return conn, nil
	default:
	}
	d := net.Dialer{Timeout: c.timeout}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10)}, nil
}

// exchange writes one request on conn and reads its answer; keep reports whether conn may carry
// another.
func (c *rawClient) exchange(conn *rawConn, method, path string, body []byte, answer *bytes.Buffer) (status int, keep bool, err error) {
	if c.timeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, false, err
		}
	}
	req := append(conn.req[:0], method...)
	req = append(req, ' ')
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, c.host...)
	req = append(req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	conn.req = req
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(conn.r, nil)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	answer.Reset()
	if _, err := answer.ReadFrom(resp.Body); err != nil {
		return 0, false, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}

// close closes the idle connections.
func (c *rawClient) close() {
	for {
		select {
		case conn := <-c.idle:
			_ = conn.Close()
		default:
			return
		}
	}
}
