package sso

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// AuditLog is the Auditor of attrcache serve: each entry one JSON line on w (CONTRACT.md §10
// "Audit"). Record encodes the line and queues it; one goroutine gathers the queue in a buffer
// written out every AuditFlushInterval, when full, and on Close, so a call never waits for w.
// Each write to w holds whole lines, so w may be shared with other writers of whole lines. A
// line that finds the queue full, or that w refuses, is dropped and counted (Dropped).
type AuditLog struct {
	w       io.Writer
	buf     []byte // lines not yet written; run's alone
	pending int    // how many lines buf holds
	lines   chan []byte

	mu     sync.RWMutex // guards closed against Record's send
	closed bool
	done   chan struct{}

	written, dropped atomic.Uint64
}

// AuditFlushInterval is how long a line may wait in AuditLog's buffer before it is written.
const AuditFlushInterval = 100 * time.Millisecond

const auditBufferBytes = 64 << 10

// NewAuditLog returns an AuditLog writing to w, queueing at most queue lines (at least 1), with
// its writer started; Close stops it.
func NewAuditLog(w io.Writer, queue int) *AuditLog {
	l := &AuditLog{w: w, buf: make([]byte, 0, auditBufferBytes), lines: make(chan []byte, max(queue, 1)), done: make(chan struct{})}
	go l.run()
	return l
}

// auditLine is the JSON form of an AuditEntry, in the order of its keys on the line.
type auditLine struct {
	Time       string   `json:"time"`
	CID        string   `json:"cid"`
	Actor      string   `json:"actor_user_id"`
	Target     string   `json:"target_user_id"`
	Username   string   `json:"username,omitempty"`
	Operation  string   `json:"operation"`
	Attrs      []string `json:"attrs,omitempty"`
	RemoteAddr string   `json:"remote_addr"`
	Outcome    string   `json:"outcome"`
}

// auditTimeLayout is RFC 3339 in UTC to the microsecond.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Record queues e's line; it never blocks.
func (l *AuditLog) Record(_ context.Context, e AuditEntry) {
	line, err := json.Marshal(auditLine{
		Time: e.Time.UTC().Format(auditTimeLayout), CID: e.CID, Actor: e.Actor, Target: e.Target,
		Username: e.Username, Operation: e.Operation, Attrs: e.Attrs, RemoteAddr: e.RemoteAddr, Outcome: e.Outcome,
	})
	if err != nil { // strings alone: cannot happen
		l.dropped.Add(1)
		return
	}
	line = append(line, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.lines <- line:
	default:
		l.dropped.Add(1)
	}
}

// run writes the queued lines until Close, and then what is left.
func (l *AuditLog) run() {
	defer close(l.done)
	ticker := time.NewTicker(AuditFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				l.flush()
				return
			}
			l.write(line)
		case <-ticker.C:
			l.flush()
		}
	}
}

// write buffers line, writing the buffer out first when line does not fit.
func (l *AuditLog) write(line []byte) {
	if len(l.buf)+len(line) > cap(l.buf) {
		l.flush()
	}
	l.buf = append(l.buf, line...)
	l.pending++
}

// flush writes the buffer out to w in one Write; the lines of a buffer w refuses are dropped.
func (l *AuditLog) flush() {
	if l.pending == 0 {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil {
		l.dropped.Add(uint64(l.pending))
	} else {
		l.written.Add(uint64(l.pending))
	}
	l.buf, l.pending = l.buf[:0], 0
}

// Written is how many lines have been written to w.
func (l *AuditLog) Written() uint64 { return l.written.Load() }

// Dropped is how many lines were not written: the queue was full, w failed, or Close had run.
func (l *AuditLog) Dropped() uint64 { return l.dropped.Load() }

// Close writes out every queued line and stops the writer; later entries are dropped. It does
// not close w.
func (l *AuditLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.lines)
	l.mu.Unlock()
	<-l.done
	return nil
}
