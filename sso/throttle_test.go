package sso

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestFailureWindowSlides(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newFailureWindow(2, time.Minute, 10)
	w.add("k", start)
	w.add("k", start.Add(20*time.Second))
	tests := []struct {
		at   time.Duration
		want time.Duration
	}{
		{20 * time.Second, 40 * time.Second}, // the first failure leaves the window at 60 s
		{59 * time.Second, time.Second},
		{60 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.at), func(t *testing.T) {
			if got := w.retryAfter("k", start.Add(tt.at)); got != tt.want {
				t.Errorf("retryAfter at +%v = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
	if got := w.retryAfter("other", start); got != 0 {
		t.Errorf("retryAfter of a key without failures = %v, want 0", got)
	}
}

func TestFailureWindowForgets(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tracked := func(w *failureWindow) int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.byKey)
	}
	t.Run("beyond maxTracked, the oldest first", func(t *testing.T) {
		w := newFailureWindow(1, time.Hour, 2)
		for i, key := range []string{"a", "b", "c"} {
			w.add(key, start.Add(time.Duration(i)*time.Second))
		}
		if got := tracked(w); got != 2 {
			t.Errorf("tracked = %d, want 2", got)
		}
		if w.retryAfter("a", start) != 0 || w.retryAfter("c", start) == 0 {
			t.Error("want a forgotten and c remembered")
		}
	})
	t.Run("keys whose failures left the window", func(t *testing.T) {
		w := newFailureWindow(5, time.Minute, 100)
		for i := range 50 {
			w.add(fmt.Sprint(i), start)
		}
		w.add("late", start.Add(2*time.Minute))
		if got := tracked(w); got != 1 {
			t.Errorf("tracked = %d, want 1", got)
		}
	})
	t.Run("forget", func(t *testing.T) {
		w := newFailureWindow(1, time.Hour, 10)
		w.add("k", start)
		w.forget("k")
		if got := w.retryAfter("k", start); got != 0 {
			t.Errorf("retryAfter after forget = %v, want 0", got)
		}
	})
}

func TestFailureWindowDisabled(t *testing.T) {
	for _, w := range []*failureWindow{newFailureWindow(0, time.Minute, 1), newFailureWindow(1, 0, 1)} {
		w.add("k", time.Now())
		if got := w.retryAfter("k", time.Now()); got != 0 {
			t.Errorf("retryAfter of a disabled window = %v, want 0", got)
		}
	}
}

func TestFailureWindowConcurrent(t *testing.T) {
	w := newFailureWindow(1000, time.Hour, 10)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				key := fmt.Sprint((i + j) % 20)
				w.add(key, now)
				w.retryAfter(key, now)
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byKey) > 10 || w.recent.Len() != len(w.byKey) {
		t.Errorf("tracked %d keys in the map and %d in the list, want the same number, at most 10", len(w.byKey), w.recent.Len())
	}
}
