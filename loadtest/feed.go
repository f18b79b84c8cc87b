package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/attrcache/attrcache/client"
)

// pathChanges is the change feed's path (CONTRACT.md §10 "Change feed").
const pathChanges = "/zato/sso/user/attr/changes"

// feedEndWait bounds how long FeedWatch.Stop waits for the feed to deliver its end mark.
const feedEndWait = 30 * time.Second

// FeedReport is what a FeedWatch measured. An event's delivery lag is the time the watch
// received it less the event's `time`: the database's clock when the writing transaction logged
// the change, just before it committed. Latencies are in milliseconds.
type FeedReport struct {
	// Events counts the set and delete events committed while the watch listened, and Lag their
	// delivery lag.
	Events uint64  `json:"events"`
	Lag    Latency `json:"lag_ms"`
	// Earlier counts the events received but left out of Lag: committed before the watch
	// listened, or expiries (whose time is the expiration time, not a commit).
	Earlier uint64 `json:"earlier"`
}

// FeedWatch reads everyone's change feed events as Server-Sent Events and measures their
// delivery lag, from WatchFeed until Stop.
type FeedWatch struct {
	target   *ZatoTarget
	markUser string // Stop's end mark: an attribute of this user, named markName
	markName string
	cancel   context.CancelFunc
	markSeen chan struct{} // closed when the end mark arrives
	done     chan struct{} // closed when the reader returns; then err and lag are its
	err      error
	lag      lagRecorder
}

// WatchFeed opens the change feed as Server-Sent Events with the super-user's session, for
// everyone's events from about the feed's end on (it does not read the events kept before),
// and measures each event's delivery lag until Stop. The feed must be on.
func (t *ZatoTarget) WatchFeed(ctx context.Context) (*FeedWatch, error) {
	if len(t.users) == 0 {
		return nil, errors.New("watching the change feed: no user was prepared")
	}
	end, err := t.feedEnd(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"ust": t.superUser.UST, "current_app": t.cfg.CurrentApp})
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, t.cfg.BaseURL+pathChanges, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", end)
	since := time.Now()
	resp, err := NewHTTPClient(1, 0).Do(req) // no time limit: the stream lasts the load
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening the change feed stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("opening the change feed stream: %s", answerCode(resp.StatusCode, answer, nil))
	}
	w := &FeedWatch{
		target: t, markUser: t.users[0].userID, markName: "bench-feed-end-" + randomHex(4),
		cancel: cancel, markSeen: make(chan struct{}), done: make(chan struct{}),
		lag: lagRecorder{since: since},
	}
	go w.read(resp.Body)
	return w, nil
}

// feedEnd returns a cursor at or near the feed's end: the next of a page of the first user's
// events, which is the last seq handed out when that user has fewer events than a page.
func (t *ZatoTarget) feedEnd(ctx context.Context) (string, error) {
	body, err := json.Marshal(map[string]any{"ust": t.superUser.UST, "current_app": t.cfg.CurrentApp,
		"user_id": t.users[0].userID, "limit": maxItemsPerRequest})
	if err != nil {
		return "", err
	}
	var page struct {
		Next string `json:"next"`
	}
	if code := t.send(ctx, http.MethodGet, pathChanges, body, &page); code != "" {
		return "", fmt.Errorf("reading the change feed: %s", code)
	}
	if page.Next == "" {
		return "", errors.New("reading the change feed: the answer holds no next cursor")
	}
	return page.Next, nil
}

// read records the stream's events until it ends or fails.
func (w *FeedWatch) read(body io.ReadCloser) {
	defer close(w.done)
	defer body.Close()
	var markOnce sync.Once
	events := newSSEReader(body)
	for {
		sse, err := events.next()
		if err != nil {
			w.err = err
			return
		}
		received := time.Now()
		if sse.Type == "error" {
			w.err = fmt.Errorf("the change feed stream failed: %s", sse.Data)
			return
		}
		var e feedEvent
		if err := json.Unmarshal([]byte(sse.Data), &e); err != nil {
			w.err = fmt.Errorf("a change feed event that is not JSON: %w", err)
			return
		}
		if e.UserID == w.markUser && e.Name == w.markName {
			markOnce.Do(func() { close(w.markSeen) })
			continue
		}
		w.lag.record(e, received)
	}
}

// Stop writes an end mark, waits (up to feedEndWait) until the stream delivers it, and so every
// event committed before it, closes the stream and returns what it measured, with an error
// when the mark did not come.
func (w *FeedWatch) Stop(ctx context.Context) (*FeedReport, error) {
	err := w.target.superUser.UserAttrs(w.markUser).Set(ctx, w.markName, true)
	if err != nil {
		err = fmt.Errorf("writing the change feed's end mark: %w", err)
	} else {
		timer := time.NewTimer(feedEndWait)
		select {
		case <-w.markSeen:
		case <-w.done:
			err = fmt.Errorf("the change feed stream ended before its end mark: %w", w.err)
		case <-timer.C:
			err = fmt.Errorf("the change feed did not deliver its end mark within %v", feedEndWait)
		case <-ctx.Done():
			err = ctx.Err()
		}
		timer.Stop()
	}
	w.cancel()
	<-w.done
	return w.lag.report(), err
}

// feedEvent is the part of a change feed event the watch reads.
type feedEvent struct {
	Op     string      `json:"op"`
	UserID string      `json:"user_id"`
	Name   string      `json:"name"`
	Time   client.Time `json:"time"`
}

// lagRecorder measures the delivery lag of the events committed at or after since.
type lagRecorder struct {
	since   time.Time
	lag     Histogram
	earlier uint64
}

// record takes an event received at received.
func (r *lagRecorder) record(e feedEvent, received time.Time) {
	if e.Op == "expire" || e.Time.Before(r.since) {
		r.earlier++
		return
	}
	r.lag.Record(received.Sub(e.Time.Time))
}

func (r *lagRecorder) report() *FeedReport {
	return &FeedReport{Events: r.lag.Count(), Lag: latencyOf(&r.lag), Earlier: r.earlier}
}

// sseEvent is one Server-Sent Event: its type ("" for a message) and its data.
type sseEvent struct {
	Type, Data string
}

// sseReader reads a text/event-stream (HTML's "Server-sent events"): lines of `field: value`,
// comments starting with ':', a blank line ending each event. It has no use for ids.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 64<<10)} }

// next returns the next event that has data; io.EOF when the stream ends, dropping an event
// it left unfinished.
func (s *sseReader) next() (sseEvent, error) {
	var typ string
	var data strings.Builder
	hasData := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData {
				return sseEvent{Type: typ, Data: data.String()}, nil
			}
			typ = ""
			continue
		}
		if line[0] == ':' {
			continue // a comment
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "event":
			typ = value
		}
	}
}
