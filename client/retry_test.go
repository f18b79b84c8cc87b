package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache/client"
)

// failMode is how a flakyServer fails a request.
type failMode int

const (
	fail503      failMode = iota // answers 503 E008004, as a server whose backend is down
	fail503Later                 // answers 503 E008004 with Retry-After: 60
	failHangUp                   // closes the connection without answering
)

// flakyServer serves the test stack, failing its first `failures` requests as mode says. It
// counts every request it receives.
type flakyServer struct {
	*httptest.Server
	mode     failMode
	failures atomic.Int64
	requests atomic.Int64
}

func newFlakyServer(t *testing.T, mode failMode, failures int64) *flakyServer {
	t.Helper()
	f := &flakyServer{mode: mode}
	f.failures.Store(failures)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.failures.Add(-1) < 0 {
			handler.ServeHTTP(w, r)
			return
		}
		switch f.mode {
		case failHangUp:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		default:
			if f.mode == fail503Later {
				w.Header().Set("Retry-After", "60")
			}
			w.Header().Set("X-Zato-CID", "0123456789abcdef01234567")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"cid":"0123456789abcdef01234567","status":"error","sub_status":["E008004"],"message":"a backend is unavailable"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// quickRetry is a retry policy whose waits do not slow the tests down.
var quickRetry = client.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}

func TestRetry(t *testing.T) {
	u := newUser(t)
	must(t, u.session.UserAttrs("").Set(t.Context(), "kept", "v"))
	tests := []struct {
		name         string
		mode         failMode
		failures     int64
		policy       client.RetryPolicy
		call         func(ctx context.Context, s *client.Session) error
		wantRequests int64
		wantCode     client.Code // "" for success, or a transport error when wantTransport
		wantHangUp   bool
	}{
		{"Get is retried after a 503", fail503, 1, quickRetry, getKept, 2, "", false},
		{"Set is retried after a dropped connection", failHangUp, 2, quickRetry, setKept, 3, "", false},
		{"Delete is retried at most MaxAttempts times", fail503, 100, quickRetry, deleteGone, 3, client.CodeInternalError, false},
		{"Names is sent once with NoRetry", fail503, 1, client.NoRetry, names, 1, client.CodeInternalError, false},
		{"a Retry-After beyond MaxBackoff ends the retries", fail503Later, 1, quickRetry, getKept, 1, client.CodeInternalError, false},
		{"Create is never retried after a 503", fail503, 1, quickRetry, createNew, 1, client.CodeInternalError, false},
		{"Create is never retried after a dropped connection", failHangUp, 1, quickRetry, createNew, 1, "", true},
		{"Update is never retried", fail503, 1, quickRetry, updateKept, 1, client.CodeInternalError, false},
		{"a conditional Set is never retried after a dropped connection", failHangUp, 1, quickRetry, setKeptIfAbsent, 1, "", true},
		{"a SetMany with an item's IfVersion is never retried", fail503, 1, quickRetry, setManyKeptIfAbsent, 1, client.CodeInternalError, false},
		{"a conditional Delete is never retried", fail503, 1, quickRetry, deleteGoneIfAbsent, 1, client.CodeInternalError, false},
		{"CreateUser is never retried", fail503, 1, quickRetry, createUser, 1, client.CodeInternalError, false},
		{"Login is never retried", failHangUp, 1, quickRetry, loginAgain(u), 1, "", true},
		{"a refusal is not retried", fail503, 0, quickRetry, otherUsersAttr, 1, client.CodeNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFlakyServer(t, tt.mode, tt.failures)
			// Without keep-alive, net/http never resends a request itself, so the count is the
			// client's own.
			tr := client.NewTransport()
			tr.DisableKeepAlives = true
			c, err := client.New(srv.URL, app, client.WithRetry(tt.policy), client.WithHTTPClient(&http.Client{Transport: tr}))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(t.Context(), c.Session(u.session.UST))
			switch {
			case tt.wantHangUp:
				if _, ok := errors.AsType[*client.Error](err); err == nil || ok {
					t.Errorf("error %v, want a transport error", err)
				}
			case tt.wantCode == "":
				if err != nil {
					t.Errorf("error %v, want success", err)
				}
			default:
				if client.CodeOf(err) != tt.wantCode {
					t.Errorf("error %v, want %s", err, tt.wantCode)
				}
			}
			if got := srv.requests.Load(); got != tt.wantRequests {
				t.Errorf("the server got %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

func getKept(ctx context.Context, s *client.Session) error {
	a, err := s.UserAttrs("").Get(ctx, "kept")
	if err == nil && a == nil {
		err = errors.New("kept not found")
	}
	return err
}

func setKept(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Set(ctx, "kept", "v")
}

func setKeptIfAbsent(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Set(ctx, "kept", "v", client.IfVersion(0))
}

func setManyKeptIfAbsent(ctx context.Context, s *client.Session) error {
	absent := int64(0)
	return s.UserAttrs("").SetMany(ctx, []client.Item{{Name: "kept", Value: "v", IfVersion: &absent}})
}

func deleteGoneIfAbsent(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Delete(ctx, "gone", client.IfVersion(0))
}

func deleteGone(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Delete(ctx, "gone")
}

func names(ctx context.Context, s *client.Session) error {
	_, err := s.UserAttrs("").Names(ctx)
	return err
}

func createNew(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Create(ctx, uniqueName("new"), 1)
}

func updateKept(ctx context.Context, s *client.Session) error {
	return s.UserAttrs("").Update(ctx, "kept", "v")
}

func createUser(ctx context.Context, s *client.Session) error {
	_, err := s.CreateUser(ctx, client.NewUser{Username: uniqueName("never")})
	return err
}

func otherUsersAttr(ctx context.Context, s *client.Session) error {
	_, err := s.UserAttrs(admin.UST).Get(ctx, "x") // a UST is no user_id: E005001
	return err
}

func loginAgain(u testUser) func(ctx context.Context, s *client.Session) error {
	return func(ctx context.Context, s *client.Session) error {
		_, err := s.Client().Login(ctx, client.Credentials{Username: u.username, Password: u.password})
		return err
	}
}

// TestDeadline checks that a call ends with its context's deadline, or the client's timeout,
// when the server does not answer, and that a call that ran out of time is not retried.
func TestDeadline(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second): // a bound: the call was meant to give up long before
			fmt.Fprint(w, `{"cid":"0123456789abcdef01234567","status":"ok","sub_status":[],"result":[]}`)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		opts []client.Option
		ctx  func(t *testing.T) context.Context
	}{
		{"the context's deadline", nil, func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}},
		{"the client's timeout", []client.Option{client.WithTimeout(50 * time.Millisecond)}, func(t *testing.T) context.Context {
			return t.Context()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			c, err := client.New(srv.URL, app, append(tt.opts, client.WithRetry(quickRetry))...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Session("ust").UserAttrs("").Names(tt.ctx(t))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want context.DeadlineExceeded", err)
			}
			if got := requests.Load(); got != 1 {
				t.Errorf("the server got %d requests, want 1", got)
			}
		})
	}
}

// TestErrorMapping checks how answers that the test stack does not give (yet) become errors.
func TestErrorMapping(t *testing.T) {
	const cid = "00112233445566778899aabb"
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantCode   client.Code
		wantIs     []client.Code
		wantStatus string
		wantRetry  time.Duration
		wantText   string
	}{
		{"409 version mismatch", 409, nil, `{"cid":"` + cid + `","status":"error","sub_status":["E009101"],"message":"version 3, want 2"}`,
			client.CodeVersionMismatch, nil, "error", 0, "HTTP 409 E009101: version 3, want 2 (cid " + cid + ")"},
		{"403 with two codes", 403, nil, `{"cid":"` + cid + `","status":"error","sub_status":["E008002","E009103"]}`,
			client.CodeInvalidInput, []client.Code{client.CodeInvalidInput, client.CodeQuotaExceeded}, "error", 0, "E008002,E009103"},
		{"413 body too large", 413, nil, `{"cid":"` + cid + `","status":"error","sub_status":["E008002"],"message":"the request body is too large"}`,
			client.CodeInvalidInput, nil, "error", 0, "HTTP 413"},
		{"429 with Retry-After", 429, map[string]string{"Retry-After": "7"}, `{"cid":"` + cid + `","status":"error","sub_status":["E005001"]}`,
			client.CodeNotAllowed, nil, "error", 7 * time.Second, "HTTP 429"},
		{"400 in Zato's body", 400, nil, `{"result":"Error","cid":"` + cid + `","details":"Bad request","status":"error","sub_status":["E008003"]}`,
			client.CodeMissingInput, nil, "error", 0, "HTTP 400 E008003"},
		{"200 with status error", 200, nil, `{"cid":"` + cid + `","status":"error","sub_status":["E004001"]}`,
			client.CodeAppInvalid, nil, "error", 0, "HTTP 200 E004001"},
		{"a proxy's 502 page", 502, map[string]string{"X-Zato-CID": cid}, `<html>Bad Gateway</html>`,
			"", nil, "", 0, "HTTP 502 Bad Gateway (cid " + cid + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c, err := client.New(srv.URL, app, client.WithRetry(client.NoRetry))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Session("ust").UserAttrs("").Get(t.Context(), "x")
			e, ok := errors.AsType[*client.Error](err)
			if !ok {
				t.Fatalf("error %v (%T), want a *client.Error", err, err)
			}
			if e.HTTPStatus != tt.status || e.Code() != tt.wantCode || e.Status != tt.wantStatus || e.CID != cid || e.RetryAfter != tt.wantRetry {
				t.Errorf("error %+v: want HTTP %d, code %q, status %q, cid %s, retry after %v", e, tt.status, tt.wantCode, tt.wantStatus, cid, tt.wantRetry)
			}
			for _, code := range tt.wantIs {
				if !errors.Is(err, code) {
					t.Errorf("errors.Is(%v, %s) = false, want true", err, code)
				}
			}
			if errors.Is(err, client.CodeAttrExists) {
				t.Errorf("errors.Is(%v, E009001) = true, want false", err)
			}
			if !strings.Contains(e.Error(), tt.wantText) || !strings.Contains(e.Error(), "GET /zato/sso/user/attr") {
				t.Errorf("Error() = %q, want it to name the call and hold %q", e.Error(), tt.wantText)
			}
		})
	}
}

// TestKeepAlive checks that sequential calls, refused ones included, share one connection.
func TestKeepAlive(t *testing.T) {
	u := newUser(t)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, app)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Session(u.session.UST)
	for i := range 10 {
		must(t, s.UserAttrs("").Set(t.Context(), "k", i))
		_, err := s.UserAttrs(admin.UST).Get(t.Context(), "k")
		wantCode(t, err, 403, client.CodeNotAllowed)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("20 sequential calls opened %d connections, want 1", got)
	}
}
