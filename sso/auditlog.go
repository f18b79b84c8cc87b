package sso

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AuditLog is the Auditor of attrcache serve: each entry one JSON line on w (CONTRACT.md §10
// "Audit"). Record appends the line to a buffer; a goroutine writes the buffer out every
// AuditFlushInterval, sooner when it is half full, and on Close, so a call never waits for w.
// Each write to w holds whole lines, so w may be shared with other writers of whole lines. A
// line that finds the buffer full (w has stalled), or that w refuses, is dropped and counted.
type AuditLog struct {
	w        io.Writer
	maxBytes int

	mu      sync.Mutex
	buf     []byte // lines not yet handed to w
	pending int    // how many lines buf holds
	closed  bool

	spare []byte // run's alone

	soon, stop, done chan struct{}

	written, dropped atomic.Uint64
}

// AuditFlushInterval is how long a line may wait in AuditLog's buffer before it is written.
const AuditFlushInterval = 100 * time.Millisecond

// NewAuditLog returns an AuditLog writing to w that holds at most maxBytes of lines waiting for
// it (at least one line's worth), with its writer started; Close stops it.
func NewAuditLog(w io.Writer, maxBytes int) *AuditLog {
	l := &AuditLog{w: w, maxBytes: maxBytes, soon: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// Record appends e's line to the buffer; it never waits for w.
func (l *AuditLog) Record(_ context.Context, e AuditEntry) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	start := len(l.buf)
	l.buf = appendAuditLine(l.buf, &e)
	full := len(l.buf) > l.maxBytes && start > 0
	if full {
		l.buf = l.buf[:start]
	} else {
		l.pending++
	}
	halfFull := len(l.buf) > l.maxBytes/2
	l.mu.Unlock()
	if full {
		l.dropped.Add(1)
	}
	if halfFull {
		select {
		case l.soon <- struct{}{}:
		default:
		}
	}
}

// run writes the buffer out every AuditFlushInterval, or when Record finds it half full, until
// Close.
func (l *AuditLog) run() {
	defer close(l.done)
	ticker := time.NewTicker(AuditFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			l.flush()
			return
		case <-ticker.C:
		case <-l.soon:
		}
		l.flush()
	}
}

// flush hands the buffered lines to w in one Write, outside the lock Record takes; the lines of
// a buffer w refuses are counted as dropped.
func (l *AuditLog) flush() {
	l.mu.Lock()
	lines, n := l.buf, l.pending
	l.buf, l.pending = l.spare[:0], 0
	l.mu.Unlock()
	if n > 0 {
		if _, err := l.w.Write(lines); err != nil {
			l.dropped.Add(uint64(n))
		} else {
			l.written.Add(uint64(n))
		}
	}
	l.spare = lines
}

// Written is how many lines have been written to w.
func (l *AuditLog) Written() uint64 { return l.written.Load() }

// Dropped is how many lines were not written: the buffer was full, w failed, or Close had run.
func (l *AuditLog) Dropped() uint64 { return l.dropped.Load() }

// Close writes out every buffered line and stops the writer; later entries are dropped. It does
// not close w.
func (l *AuditLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return nil
}

// AuditWriter is the Auditor of the command line: each entry is its JSON line, as AuditLog writes
// it, written to w within Record, one Write per line. It is safe for concurrent use.
type AuditWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewAuditWriter returns an AuditWriter writing to w.
func NewAuditWriter(w io.Writer) *AuditWriter { return &AuditWriter{w: w} }

// Record writes e's line to w.
func (a *AuditWriter) Record(_ context.Context, e AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = appendAuditLine(a.buf[:0], &e)
	if _, err := a.w.Write(a.buf); err != nil && a.err == nil {
		a.err = err
	}
}

// Err returns the first error w gave, nil when every line was written.
func (a *AuditWriter) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// auditTimeLayout is RFC 3339 in UTC to the microsecond.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// appendAuditLine appends e's JSON line, newline included, to b: the keys time, cid,
// actor_user_id, target_user_id, username (when given), operation, attrs (when given),
// remote_addr and outcome, in that order.
func appendAuditLine(b []byte, e *AuditEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, auditTimeLayout)
	b = append(b, `","cid":`...)
	b = appendJSONString(b, e.CID)
	b = append(b, `,"actor_user_id":`...)
	b = appendJSONString(b, e.Actor)
	b = append(b, `,"target_user_id":`...)
	b = appendJSONString(b, e.Target)
	if e.Username != "" {
		b = append(b, `,"username":`...)
		b = appendJSONString(b, e.Username)
	}
	b = append(b, `,"operation":`...)
	b = appendJSONString(b, e.Operation)
	if len(e.Attrs) > 0 {
		b = append(b, `,"attrs":[`...)
		for i, name := range e.Attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, name)
		}
		b = append(b, ']')
	}
	b = append(b, `,"remote_addr":`...)
	b = appendJSONString(b, e.RemoteAddr)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, e.Outcome)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always encodes
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
