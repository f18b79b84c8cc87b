package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileBody returns issue #11's hostile body of size bytes: the given keys, then "zzz", a
// list of [0] as long as fits.
func hostileBody(keys string, size int) []byte {
	head := `{` + keys + `,"zzz":[`
	const tail = `[0]]}`
	n := (size - len(head) - len(tail)) / len("[0],")
	body := make([]byte, 0, size)
	body = append(body, head...)
	body = append(body, bytes.Repeat([]byte("[0],"), n)...)
	body = append(body, tail...)
	return append(body, bytes.Repeat([]byte(" "), size-len(body))...)
}

// TestHostileBodiesBeforeAuthentication is issue #11's reproduction: 8 parallel 8 MiB bodies
// of a long list under a key no endpoint reads, to login and then to attribute PUT with a bad
// UST; then the list under data, which attribute PUT reads. Each must be refused with a 4xx (never a 5xx), /healthz must answer meanwhile, and the
// served process's peak RSS must stay under 250 MiB.
func TestHostileBodiesBeforeAuthentication(t *testing.T) {
	const (
		parallel = 8
		size     = 8 << 20
		maxRSS   = 250 << 20
	)
	p := startServeProcess(t, nil, true)
	baseline := p.peakRSS(t)
	batches := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, pathLogin, hostileBody(`"current_app":"CRM","username":"x","password":"y"`, size)},
		{http.MethodPut, pathUserAttr, hostileBody(`"ust":"not-a-ust","current_app":"CRM","username":"x","password":"y"`, size)},
		// The same list under data, a key the attribute endpoints read.
		{http.MethodPut, pathUserAttr, bytes.Replace(hostileBody(`"ust":"not-a-ust","current_app":"CRM","username":"x","password":"y"`, size),
			[]byte(`"zzz":`), []byte(`"data":`), 1)},
	}
	for _, batch := range batches {
		ctx, stopProbing := context.WithCancel(t.Context())
		probes := make(chan error, 1)
		go func() { probes <- probeHealth(ctx, p) }()

		var wg sync.WaitGroup
		statuses := make([]int, parallel)
		errs := make([]error, parallel)
		for i := range parallel {
			wg.Go(func() {
				statuses[i], errs[i] = sendBody(t.Context(), batch.method, p.baseURL+batch.path, batch.body)
			})
		}
		wg.Wait()
		stopProbing()
		answered, err := <-probes, error(nil)
		if answered != nil {
			err = answered
		}
		for i := range parallel {
			if errs[i] != nil || statuses[i] < 400 || statuses[i] >= 500 {
				t.Errorf("%s %s with an 8 MiB hostile body: HTTP %d, error %v; want a 4xx", batch.method, batch.path, statuses[i], errs[i])
			}
		}
		if err != nil {
			t.Errorf("/healthz during the hostile %s %s: %v, want 200 throughout", batch.method, batch.path, err)
		}
	}
	peak := p.peakRSS(t)
	t.Logf("peak RSS of serve: %d MiB before the hostile requests, %d MiB after", baseline>>20, peak>>20)
	if peak >= maxRSS {
		t.Errorf("peak RSS of serve %d MiB, want under %d MiB", peak>>20, maxRSS>>20)
	}
}

// probeHealth asks /healthz until ctx ends, and returns the first failure; it asks at least once.
func probeHealth(ctx context.Context, p *serveProcess) error {
	for {
		if err := p.healthy(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sendBody sends body with method to url and returns the answer's status.
func sendBody(ctx context.Context, method, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestServedMadeUpMethodsAndHeaders is issue #11's reproduction of findings 3 and 6 against a
// running server: requests `X<random hex> /healthz HTTP/1.1` without a login add no series to
// /metrics, and every answer, whatever its kind, says Cache-Control: no-store and
// X-Content-Type-Options: nosniff.
func TestServedMadeUpMethodsAndHeaders(t *testing.T) {
	s := startServe(t, nil)
	madeUp := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			req, err := http.NewRequest(fmt.Sprintf("X%x", 0xa0000+i), s.baseURL+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("%s /healthz: HTTP %d, want 405", req.Method, resp.StatusCode)
			}
		}
	}
	s.scrape(t)
	madeUp(0, 1)
	before := len(s.scrape(t))
	madeUp(1, 300)
	after := s.scrape(t)
	if len(after) != before {
		t.Errorf("/metrics: %d series after 300 made-up methods, want %d as after one", len(after), before)
	}
	if got := after[`attrcache_http_requests_total{method="other",route="/healthz",status="405"}`]; got != 300 {
		t.Errorf(`requests labelled method="other": %v, want 300`, got)
	}

	for _, tt := range []struct {
		method, path, body string
		wantStatus         int
	}{
		{http.MethodGet, "/healthz", "", 200},
		{http.MethodGet, "/readyz", "", 200},
		{http.MethodGet, "/metrics", "", 200},
		{http.MethodGet, "/no/such/path", "", 404},
		{"XMADEUP", pathLogin, "", 405},
		{http.MethodPost, pathLogin, `{"current_app":"CRM","username":"nobody","password":"wrong-password"}`, 403},
		{http.MethodPost, pathLogin, `{`, 400},
		{http.MethodPut, pathUserAttr, `{"ust":"not-a-ust","current_app":"CRM","name":"n","value":1}`, 403},
	} {
		req, err := http.NewRequest(tt.method, s.baseURL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantStatus)
		}
		for header, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Values(header); len(got) != 1 || got[0] != want {
				t.Errorf("%s %s: %s %q, want %q", tt.method, tt.path, header, got, want)
			}
		}
	}
}
