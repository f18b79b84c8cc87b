// Package faultproxy is a small in-process TCP proxy for fault-injection tests: it forwards every
// connection it accepts to one target, and a test can take the target "down", slow it, or cut the
// connections in flight, while the code under test keeps talking to the proxy's address.
//
// Faults are abrupt, as a crashed server or a broken network shows them: a connection that is cut
// or refused is reset (RST), not closed politely, so a client reading from it sees an error at
// once instead of waiting for a timeout.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the proxy's own connection to the target.
const dialTimeout = 5 * time.Second

// chunkSize is the most bytes the proxy reads, delays and forwards as one chunk.
const chunkSize = 32 << 10

// Proxy forwards the connections made to Addr to its target. Its methods are safe for
// concurrent use.
type Proxy struct {
	listener net.Listener
	target   string
	delay    atomic.Int64 // nanoseconds each chunk waits before it is forwarded

	mu     sync.Mutex
	down   bool
	closed bool
	links  map[*link]struct{}

	accepted atomic.Int64
	refused  atomic.Int64
	wg       sync.WaitGroup // the accept loop and every link's goroutines
}

// Listen starts a proxy on a free port of 127.0.0.1 that forwards to target (host:port). The
// caller closes it.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listening: %w", err)
	}
	p := &Proxy{listener: ln, target: target, links: make(map[*link]struct{})}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the address clients connect to instead of the target's.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

// Down makes the target unreachable: the connections in flight are reset, and each new one is
// reset as soon as it is accepted, until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.CutAll()
}

// Up ends Down: new connections reach the target again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Slow makes every chunk of data, in both directions, wait d before it is forwarded; 0 ends the
// delay. A chunk already waiting keeps the delay it started with.
func (p *Proxy) Slow(d time.Duration) { p.delay.Store(int64(d)) }

// CutAll resets every connection in flight once; new connections are forwarded as before.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
}

// Accepted returns how many connections the proxy has forwarded to the target so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Refused returns how many connections the proxy has reset on arrival because it was down.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// Close stops listening, resets every connection in flight and waits for the proxy's goroutines
// to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.listener.Close()
	p.CutAll()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy: closing: %w", err)
	}
	return nil
}

// acceptLoop forwards each accepted connection until the listener is closed.
func (p *Proxy) acceptLoop() {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return // closed; a transient accept error on loopback is not worth retrying
		}
		l, ok := p.admit(conn)
		if !ok {
			p.refused.Add(1)
			reset(conn)
			continue
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.forward(l) })
	}
}

// admit registers a link for conn, or reports false when the proxy is down or closed.
func (p *Proxy) admit(conn net.Conn) (*link, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		return nil, false
	}
	l := &link{client: conn, done: make(chan struct{})}
	p.links[l] = struct{}{}
	return l, true
}

// forward connects l to the target and copies both ways until both directions end or l is cut.
func (p *Proxy) forward(l *link) {
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		l.end(closeConn)
	}()
	upstream, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		return // the client sees its connection reset, as if the target had refused it
	}
	if !l.attach(upstream) {
		reset(upstream)
		return
	}
	var both sync.WaitGroup
	both.Go(func() { p.pipe(l, upstream, l.client) })
	both.Go(func() { p.pipe(l, l.client, upstream) })
	both.Wait()
}

// pipe copies src to dst a chunk at a time, each chunk held back by the delay that Slow set when
// it was read. When src ends, dst's write side is closed, as TCP passes a FIN on; any other
// failure cuts the whole link.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	buf := make([]byte, chunkSize)
	for {
		n, readErr := src.Read(buf)
		if n > 0 {
			if !l.wait(time.Duration(p.delay.Load())) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				l.cut()
				return
			}
		}
		if readErr != nil {
			if errors.Is(readErr, io.EOF) {
				closeWrite(dst)
				return
			}
			l.cut()
			return
		}
	}
}

// link is one client connection and, once dialled, its connection to the target.
type link struct {
	client net.Conn

	mu       sync.Mutex
	upstream net.Conn
	ended    bool
	done     chan struct{} // closed when l ends
}

// attach records the connection to the target, or reports false if l has ended meanwhile.
func (l *link) attach(upstream net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.upstream = upstream
	return true
}

// cut resets both connections of l; it is safe to call more than once.
func (l *link) cut() { l.end(reset) }

// end closes both connections of l with closeFn, unless l has ended already.
func (l *link) end(closeFn func(net.Conn)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.ended = true
	close(l.done)
	closeFn(l.client)
	if l.upstream != nil {
		closeFn(l.upstream)
	}
}

// wait holds a chunk back for d, and reports false if l has ended meanwhile.
func (l *link) wait(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-l.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}

// reset closes conn so that its peer sees a reset rather than an orderly end.
func reset(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // only fails on a closed connection, which Close then reports
	}
	_ = conn.Close() // nothing to do about a failure: the connection is gone either way
}

// closeConn closes conn in an orderly way, once both directions have ended.
func closeConn(conn net.Conn) {
	_ = conn.Close() // both directions are done: nothing is lost if this fails
}

// closeWrite passes an orderly end of one direction on to conn's peer.
func closeWrite(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite() // fails only when the connection is already gone
	}
}
