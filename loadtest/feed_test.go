package loadtest

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache/client"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{"the feed's shape", ": attrcache change feed\n\nid: 7\ndata: {\"cursor\":\"7\"}\n\nid: 8\ndata: {\"cursor\":\"8\"}\n\n: keep-alive\n\n",
			[]sseEvent{{Data: `{"cursor":"7"}`}, {Data: `{"cursor":"8"}`}}},
		{"an error event", "event: error\ndata: {\"status\":\"error\"}\n\n", []sseEvent{{Type: "error", Data: `{"status":"error"}`}}},
		{"CRLF line ends", "data: a\r\n\r\ndata: b\r\n\r\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"data lines joined", "data: one\ndata:two\ndata:  three\n\n", []sseEvent{{Data: "one\ntwo\n three"}}},
		{"empty data is an event", "data:\n\n", []sseEvent{{Data: ""}}},
		{"no data is no event, and its type is dropped", "event: error\nid: 3\n\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"an unknown field is ignored", "retry: 10\nfoo\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"an unfinished event is dropped", "data: done\n\ndata: cut sho", []sseEvent{{Data: "done"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSSEReader(strings.NewReader(tt.stream))
			var got []sseEvent
			for {
				e, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("next: %v", err)
				}
				got = append(got, e)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLagRecorder(t *testing.T) {
	since := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r := lagRecorder{since: since}
	at := func(d time.Duration) client.Time { return client.Time{Time: since.Add(d)} }
	// Committed at since+i ms, received (i+1)*10 ms later: lags of 10 to 100 ms.
	for i := range 10 {
		committed := at(time.Duration(i) * time.Millisecond)
		r.record(feedEvent{Op: "set", Time: committed}, committed.Add(time.Duration(i+1)*10*time.Millisecond))
	}
	r.record(feedEvent{Op: "set", Time: at(-time.Millisecond)}, since.Add(time.Millisecond))          // before the watch
	r.record(feedEvent{Op: "expire", Time: at(-time.Hour)}, since.Add(time.Second))                   // an expiry
	r.record(feedEvent{Op: "delete", Time: at(time.Second)}, since.Add(time.Second-time.Microsecond)) // clocks apart: 0

	got := r.report()
	if got.Events != 11 || got.Earlier != 2 {
		t.Errorf("events %d, earlier %d; want 11 and 2", got.Events, got.Earlier)
	}
	// The log-linear buckets keep a quantile within about 1.6 % above the true value.
	within := func(got, want float64) bool { return got >= want && got <= want*1.02 }
	if !within(got.Lag.P50, 50) || !within(got.Lag.P99, 100) || got.Lag.Max != 100 {
		t.Errorf("lag p50 %v, p99 %v, max %v ms; want 50, 100, 100", got.Lag.P50, got.Lag.P99, got.Lag.Max)
	}
}
