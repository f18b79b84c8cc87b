package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// serve logs a line per request. Written straight to standard error, that is a system call per
// request, a tenth of what a cached read costs the CPU; so serve's log is buffered, and written
// when logBufferBytes have gathered or logFlushInterval has passed, whichever comes first, and
// when serve returns. A crash loses at most the lines of the last logFlushInterval.
const (
	logBufferBytes   = 64 << 10
	logFlushInterval = 100 * time.Millisecond
)

// bufferedLog buffers what is written to it for w, as described above. Write and Close are safe
// for concurrent use; after Close, writes go to w at once.
type bufferedLog struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	w      io.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// newBufferedLog returns a bufferedLog writing to w, with its flushing loop started.
func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{buf: bufio.NewWriterSize(w, logBufferBytes), w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(logFlushInterval)
	return b
}

// Write buffers p (bufio writes the buffer out first when p does not fit).
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	return b.buf.Write(p)
}

// flushEvery writes the buffer out every interval until Close.
func (b *bufferedLog) flushEvery(interval time.Duration) {
	defer close(b.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-ticker.C:
			b.flush()
		}
	}
}

func (b *bufferedLog) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the flushing loop and writes out what is buffered.
func (b *bufferedLog) Close() error {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.buf.Flush()
}
