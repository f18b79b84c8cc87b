package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// gatedBody is a request body that gives its first part, reports that through sentFirst, and
// gives the rest only once release is closed: a request in flight, its connection open and its
// body half sent.
type gatedBody struct {
	first, rest []byte
	sentFirst   chan struct{}
	release     <-chan struct{}
	once        sync.Once
}

func newGatedBody(data []byte, release <-chan struct{}) *gatedBody {
	half := len(data) / 2
	return &gatedBody{first: data[:half], rest: data[half:], sentFirst: make(chan struct{}), release: release}
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	b.once.Do(func() {
		close(b.sentFirst)
		<-b.release
	})
	if len(b.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// manyAttrsBody returns the body of a many-item PUT of items attributes named prefix-NNNN, each
// holding a string of valueBytes bytes.
func manyAttrsBody(t *testing.T, ust, prefix string, items, valueBytes int) ([]byte, []string) {
	t.Helper()
	data := make([]map[string]any, items)
	names := make([]string, items)
	for i := range data {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
		data[i] = map[string]any{"name": names[i], "value": strings.Repeat("v", valueBytes)}
	}
	body, err := json.Marshal(map[string]any{"ust": ust, "current_app": testApp, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	return body, names
}

// putOutcome is what one PUT during the shutdown got.
type putOutcome struct {
	what   string
	status int
	answer map[string]any
	err    error
}

// putAttrs sends body, a PUT of attributes, on a connection of its own and reports the outcome.
func putAttrs(ctx context.Context, client *http.Client, baseURL, what string, body io.Reader) putOutcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+pathUserAttr, body)
	if err != nil {
		return putOutcome{what: what, err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return putOutcome{what: what, err: err}
	}
	defer resp.Body.Close()
	var answer map[string]any
	err = json.NewDecoder(resp.Body).Decode(&answer)
	return putOutcome{what: what, status: resp.StatusCode, answer: answer, err: err}
}

// TestSIGTERMDrainsBeforeStopping sends a real SIGTERM to a serving process while large
// many-item PUTs are in flight (their bodies half sent), and checks the lame-duck shutdown:
// /readyz answers 503 at once, the server still accepts new connections during
// http.drain_delay, every PUT, in flight or new, is answered 200 and stored, and the process
// then exits with status 0.
func TestSIGTERMDrainsBeforeStopping(t *testing.T) {
	const (
		inFlight   = 6
		opened     = 4
		items      = 1000
		valueBytes = 1000 // a body of about 1 MB
		drainDelay = 5 * time.Second
	)
	userID := createUser(t, "create-user", "lame-duck", "L4me-duck-pass")
	p := startServeProcess(t, map[string]string{"ATTRCACHE_HTTP_DRAIN_DELAY": drainDelay.String()}, false)
	ust := p.login(t, "lame-duck", "L4me-duck-pass", "")

	// Every request on a connection of its own, so that each new one is a new connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	outcomes := make(chan putOutcome, inFlight+opened)
	release := make(chan struct{})
	var allNames []string
	for i := range inFlight {
		body, names := manyAttrsBody(t, ust, fmt.Sprintf("in-flight-%d", i), items, valueBytes)
		allNames = append(allNames, names...)
		gated := newGatedBody(body, release)
		go func() {
			outcomes <- putAttrs(ctx, client, p.baseURL, fmt.Sprintf("in-flight PUT %d", i), gated)
		}()
		select {
		case <-gated.sentFirst:
		case <-time.After(30 * time.Second):
			t.Fatalf("the first half of PUT %d was not sent within 30 s", i)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM: %v", err)
	}
	signalled := time.Now()
	pollUntil(t, "/readyz to answer 503 after SIGTERM", func() bool {
		resp, err := client.Get(p.baseURL + "/readyz")
		if err != nil {
			t.Fatalf("/readyz after SIGTERM: %v, want an answer while draining", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if resp, err := client.Get(p.baseURL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while draining: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	close(release)
	for i := range opened {
		body, names := manyAttrsBody(t, ust, fmt.Sprintf("opened-%d", i), items/10, valueBytes)
		allNames = append(allNames, names...)
		go func() {
			outcomes <- putAttrs(ctx, client, p.baseURL, fmt.Sprintf("PUT %d opened while draining", i), bytes.NewReader(body))
		}()
	}
	for range inFlight + opened {
		o := <-outcomes // each gives up within ctx's minute
		if o.err != nil || o.status != http.StatusOK || o.answer["status"] != "ok" {
			t.Errorf("%s: HTTP %d %v, error %v; want 200 and status ok", o.what, o.status, o.answer, o.err)
		}
	}
	if elapsed := time.Since(signalled); elapsed >= drainDelay {
		t.Logf("the PUTs took %v after SIGTERM, longer than the drain delay %v: the machine is slow", elapsed, drainDelay)
	}

	if err := p.waitExit(t, drainDelay+30*time.Second); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"draining: not ready, still serving"`) {
		t.Errorf("the log has no line saying that serve drained:\n%s", p.stderr)
	}
	stored, err := openTestDB(t).Attrs(t.Context(), attrcache.AttrScope{UserID: userID}, allNames, attrcache.Now())
	if err != nil {
		t.Fatalf("reading the attributes from MySQL: %v", err)
	}
	if got, want := len(stored), len(allNames); got != want {
		t.Errorf("MySQL holds %d of the %d attributes written during the shutdown", got, want)
	}
}
