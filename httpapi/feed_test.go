package httpapi_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache/httpapi"
)

func TestFeedStreamEndsWhenStreamsEnd(t *testing.T) {
	end := make(chan struct{})
	srv := httptest.NewServer(httpapi.NewServer(api, httpapi.Options{StreamsEnd: end}))
	t.Cleanup(srv.Close)
	u := newUser(t, false, nil)
	q := url.Values{"ust": {u.ust}, "current_app": {app}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/zato/sso/user/attr/changes?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html, text/event-stream;q=0.9")
	client := &http.Client{Timeout: 5 * time.Second} // the stream keeps going past this unless it ends
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || !strings.HasPrefix(got, "text/event-stream") {
		t.Fatalf("HTTP %d, Content-Type %q; want 200 text/event-stream", res.StatusCode, got)
	}
	body := bufio.NewReader(res.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, %v; want a comment", line, err)
	}
	close(end)
	if _, err := io.ReadAll(body); err != nil {
		t.Errorf("reading the stream once streams end: %v; want it closed", err)
	}
}
