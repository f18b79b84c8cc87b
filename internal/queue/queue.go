// Package queue holds Closable, a queue of work that its own workers drain and that can be
// closed while callers are still putting items on it.
package queue

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed says that the queue no longer takes items.
var ErrClosed = errors.New("queue: closed")

// Closable is a bounded queue of items of type T, drained by workers it starts. It is safe for
// concurrent use.
type Closable[T any] struct {
	// mu guards closed and sending on items: Close takes it for writing, so that it closes items
	// after every Put under way.
	mu      sync.RWMutex
	closed  bool
	items   chan T
	workers sync.WaitGroup
}

// New returns a queue of capacity items and starts workers goroutines, each running work on the
// queue's items; work must return once items is closed and drained.
func New[T any](capacity, workers int, work func(items <-chan T)) *Closable[T] {
	q := &Closable[T]{items: make(chan T, capacity)}
	for range workers {
		q.workers.Go(func() { work(q.items) })
	}
	return q
}

// Put queues item, waiting while the queue is full. It returns ErrClosed, and queues nothing,
// once Close has been called, and ctx's error when ctx ends before the item is queued.
func (q *Closable[T]) Put(ctx context.Context, item T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.items <- item:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking items and returns once the workers have returned, every item queued
// before it taken. Calling it again only waits.
func (q *Closable[T]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.items)
	}
	q.mu.Unlock()
	q.workers.Wait()
}

// Len returns how many items wait in the queue.
func (q *Closable[T]) Len() int { return len(q.items) }

// Closed reports whether Close has been called.
func (q *Closable[T]) Closed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}
