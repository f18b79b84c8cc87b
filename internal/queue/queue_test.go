package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestCloseDrainsWhatWasQueued closes a queue whose worker is held: every item put before Close
// is taken, and a Put after Close returns ErrClosed.
func TestCloseDrainsWhatWasQueued(t *testing.T) {
	const items = 10
	release := make(chan struct{})
	var mu sync.Mutex
	var taken []int
	q := New(items, 1, func(in <-chan int) {
		<-release
		for item := range in {
			mu.Lock()
			taken = append(taken, item)
			mu.Unlock()
		}
	})
	for i := range items {
		if err := q.Put(t.Context(), i); err != nil {
			t.Fatalf("Put(%d) = %v, want nil", i, err)
		}
	}
	if got := q.Len(); got != items {
		t.Errorf("Len() = %d, want %d", got, items)
	}
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	close(release)
	<-closed
	if len(taken) != items {
		t.Errorf("%d items taken, want %d", len(taken), items)
	}
	if !q.Closed() {
		t.Error("Closed() = false after Close")
	}
	if err := q.Put(t.Context(), items); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	q.Close() // again: only waits
}

// TestPutGivesUpWithItsContext fills a queue no worker drains: a Put whose context ends returns
// the context's error and queues nothing.
func TestPutGivesUpWithItsContext(t *testing.T) {
	release := make(chan struct{})
	q := New(1, 1, func(in <-chan int) {
		<-release
		for range in {
		}
	})
	t.Cleanup(func() { close(release); q.Close() })
	if err := q.Put(t.Context(), 1); err != nil {
		t.Fatalf("Put into an empty queue = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := q.Put(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("Put into a full queue with an ended context = %v, want context.Canceled", err)
	}
	if got := q.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
}
