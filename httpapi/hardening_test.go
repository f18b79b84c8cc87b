package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
)

// TestEveryAnswerForbidsCachingAndSniffing checks Cache-Control: no-store and
// X-Content-Type-Options: nosniff on answers of every kind: success, refusal, 400, 404, 405,
// 413, health and metrics.
func TestEveryAnswerForbidsCachingAndSniffing(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{
		Metrics:        metrics.New(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		MaxBodyBytes:   1 << 10,
	})
	u := newUser(t, false, nil)
	tests := []struct {
		name       string
		call       call
		wantStatus int
	}{
		{"login", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": u.password, "current_app": app})}, 200},
		{"refused login", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": "wrong", "current_app": app})}, 403},
		{"attribute read", call{method: http.MethodGet, path: pathUserAttr, body: jsonOf(withCaller(u, map[string]any{"name": "n"}))}, 200},
		{"malformed body", call{method: http.MethodPost, path: pathLogin, body: "{"}, 400},
		{"unknown path", call{method: http.MethodGet, path: "/no/such/path"}, 404},
		{"unsupported verb", call{method: http.MethodPut, path: pathUser}, 405},
		{"body too large", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": strings.Repeat("u", 2048)})}, 413},
		{"healthz", call{method: http.MethodGet, path: "/healthz"}, 200},
		{"readyz", call{method: http.MethodGet, path: "/readyz"}, 200},
		{"metrics", call{method: http.MethodGet, path: "/metrics"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(h, tt.call)
			if res.status != tt.wantStatus {
				t.Fatalf("HTTP %d %s, want %d", res.status, res.raw, tt.wantStatus)
			}
			for header, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
				if got := res.header.Values(header); len(got) != 1 || got[0] != want {
					t.Errorf("%s: %q, want %q", header, got, want)
				}
			}
		})
	}
}

// TestMadeUpMethodsAddNoSeries sends many requests with made-up methods, to a routed path, a
// path routed for other methods only and an unknown path, and checks that the metrics label them
// all "other": the series do not grow with the methods.
func TestMadeUpMethodsAddNoSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{
		Metrics:        metrics.New(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	paths := []string{"/healthz", pathLogin, "/no/such/path"}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			for _, path := range paths {
				if res := serve(h, call{method: fmt.Sprintf("X%08x", i), path: path}); res.status >= 500 {
					t.Fatalf("made-up method on %s: HTTP %d %s", path, res.status, res.raw)
				}
			}
		}
	}
	scrape := func() string {
		t.Helper()
		res := serve(h, call{method: http.MethodGet, path: "/metrics"})
		if res.status != http.StatusOK {
			t.Fatalf("GET /metrics: HTTP %d", res.status)
		}
		return string(res.raw)
	}
	scrape() // so that the scrapes' own series exist before the count
	send(0, 1)
	before := scrape()
	send(1, 200)
	after := scrape()

	if got := strings.Count(after, "X0000"); got != 0 {
		t.Errorf("the metrics hold %d made-up methods as labels", got)
	}
	for _, family := range []string{"attrcache_http_requests_total{", "attrcache_http_request_duration_seconds_count{"} {
		if got, want := strings.Count(after, family), strings.Count(before, family); got != want {
			t.Errorf("%s series: %d after 200 made-up methods, want %d as after one", family, got, want)
		}
	}
	for _, path := range paths {
		route := path
		if path == "/no/such/path" {
			route = "unmatched"
		}
		want := fmt.Sprintf(`attrcache_http_requests_total{method="other",route=%q,status="405"} 200`, route)
		if route == "unmatched" {
			want = fmt.Sprintf(`attrcache_http_requests_total{method="other",route=%q,status="404"} 200`, route)
		}
		if !strings.Contains(after, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestQueryStringPrecedence sends every key every route reads in the query string only, in the
// body only, and in both, and checks that the endpoint is given the query string's value when
// there is one (CONTRACT.md §2), and that a key the route does not read is not given at all.
// The cases come from the route table, so a new route or key is covered by itself.
func TestQueryStringPrecedence(t *testing.T) {
	routes := httpapi.Routes()
	if len(routes) < 40 {
		t.Fatalf("the route table lists %d routes, want every route", len(routes))
	}
	for _, rt := range routes {
		for _, key := range append(rt.Keys, "not_read_by_any_route") {
			fromQuery, fromBody := "query-"+key, "body-"+key
			tests := []struct {
				name        string
				query, body bool
				want        any // nil: absent
			}{
				{"query only", true, false, fromQuery},
				{"body only", false, true, fromBody},
				{"both", true, true, fromQuery},
			}
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s %s %s %s", rt.Method, rt.Path, key, tt.name), func(t *testing.T) {
					target := rt.Path
					if tt.query {
						target += "?" + url.Values{key: {fromQuery}, "other": {"x"}}.Encode()
					}
					body := map[string]any{"another": "y"}
					if tt.body {
						body[key] = fromBody
					}
					values, err := httpapi.ReadInput(httptest.NewRequest(rt.Method, target, strings.NewReader(jsonOf(body))))
					if err != nil {
						t.Fatalf("reading the input: %v", err)
					}
					want := tt.want
					if !slices.Contains(rt.Keys, key) {
						want = nil
					}
					got, present := values[key]
					if text, ok := got.(json.RawMessage); ok { // a key the endpoint reads as JSON text
						_ = json.Unmarshal(text, &got)
					}
					if want == nil && present || want != nil && got != want {
						t.Errorf("%s = %#v (present %v), want %#v", key, got, present, want)
					}
				})
			}
		}
	}
}

// TestUpdateUserFromQueryString is issue #11's reproduction: a super-user's PATCH
// /zato/sso/user with user_id (and is_locked as the string "true") in the query string and
// display_name in the body updates the user the query names, never the caller.
func TestUpdateUserFromQueryString(t *testing.T) {
	caller := newUser(t, true, nil)
	target := newUser(t, false, nil)
	query := url.Values{"user_id": {target.id}, "is_locked": {"true"}, "password_must_change": {"false"}}
	res := serve(handler, call{method: http.MethodPatch, path: pathUser + "?" + query.Encode(),
		body: jsonOf(withCaller(caller, map[string]any{"display_name": "Named by the query", "user_id": caller.id}))})
	wantOK(t, res)

	after := getUserByID(t, target.id)
	for key, want := range map[string]any{"display_name": "Named by the query", "is_locked": true, "password_must_change": false} {
		if got := after[key]; got != want {
			t.Errorf("the user the query names: %s = %#v, want %#v", key, got, want)
		}
	}
	self := getUserByID(t, caller.id)
	if self["display_name"] != nil || self["is_locked"] != false {
		t.Errorf("the caller: display_name %#v, is_locked %#v; want both unchanged (null, false)", self["display_name"], self["is_locked"])
	}
}

// hostileList returns n elements "[0]," as a JSON list: each costs a slice, a boxed number and
// more when decoded, 4 bytes of text.
func hostileList(n int) string {
	return "[" + strings.Repeat("[0],", n-1) + "[0]]"
}

// TestPreAuthenticationBounds checks what a request may cost before its caller is known: keys
// the route does not read are skipped, decoded values are bounded in depth and number (400
// E008002), bodies are bounded per route (413).
func TestPreAuthenticationBounds(t *testing.T) {
	u := newUser(t, false, nil)
	h := httpapi.NewServer(api, httpapi.Options{MaxBodyBytes: 8 << 20})
	login := func(extra string) string {
		return `{"current_app":"CRM","username":"x","password":"y"` + extra + `}`
	}
	// More names than the decoding bound of attribute calls: twice the item limit times the
	// decoded members of an item, and one more.
	manyNames := make([]any, 2*attrcache.MaxAttrItems*6+1)
	for i := range manyNames {
		manyNames[i] = fmt.Sprintf("n%d", i)
	}
	tests := []struct {
		name        string
		call        call
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"login, a key no route reads is skipped", call{method: http.MethodPost, path: pathLogin, body: login(`,"zzz":` + hostileList(15000))},
			403, attrcache.CodeNotAllowed, ""},
		{"login, body over the route's bound", call{method: http.MethodPost, path: pathLogin, body: login(`,"zzz":` + hostileList(17000))},
			413, attrcache.CodeInvalidInput, "too large"},
		{"login, a key it reads nested too deeply", call{method: http.MethodPost, path: pathLogin, body: `{"current_app":"CRM","password":"y","username":[[["x"]]]}`},
			400, attrcache.CodeInvalidInput, "too deeply"},
		{"attribute write, an item's name nested too deeply", call{method: http.MethodPut, path: pathUserAttr,
			body: jsonOf(withCaller(u, map[string]any{"data": []any{map[string]any{"name": []any{[]any{"x"}}, "value": 1}}}))},
			400, attrcache.CodeInvalidInput, "too deeply"},
		{"attribute write, values are not decoded however deep", call{method: http.MethodPut, path: pathUserAttr,
			body: `{"ust":"` + u.ust + `","current_app":"CRM","data":[{"name":"deep","value":[[[[[[["x"]]]]]]],"extra":` + hostileList(1000) + `}]}`},
			200, "", ""},
		{"attribute read, too many names", call{method: http.MethodGet, path: pathUserAttr, body: jsonOf(withCaller(u, map[string]any{"data": manyNames}))},
			400, attrcache.CodeInvalidInput, "too many values"},
		{"attribute write, a data list over the item limit is sso's to refuse", call{method: http.MethodGet, path: pathUserAttr,
			body: jsonOf(withCaller(u, map[string]any{"data": manyNames[:attrcache.MaxAttrItems+1]}))},
			403, attrcache.CodeInvalidInput, ""},
		{"attribute write with a bad UST, a key no route reads is skipped", call{method: http.MethodPut, path: pathUserAttr,
			body: `{"ust":"bad","current_app":"CRM","name":"n","value":1,"zzz":` + hostileList(100000) + `}`},
			403, attrcache.CodeNoSuchSession, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(h, tt.call)
			if tt.wantCode == "" {
				wantOK(t, res)
				return
			}
			wantError(t, res, tt.wantStatus, tt.wantCode)
			if msg, _ := res.body["message"].(string); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q, want one saying %q", msg, tt.wantMessage)
			}
		})
	}
}

// blockingBody is a request body that announces its length, and on its first read reports that
// the server has started reading, then waits until released.
type blockingBody struct {
	reading, release chan struct{}
	once             sync.Once
}

func (b *blockingBody) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.release
	return 0, io.EOF
}

// TestInflightBodyBytes checks that the bodies held at once are bounded: while one request holds
// its reservation, another that does not fit beside it is answered 503 E008004, and one that
// fits is served.
func TestInflightBodyBytes(t *testing.T) {
	const limit = 100 << 10
	h := httpapi.NewServer(api, httpapi.Options{MaxBodyBytes: 1 << 20, MaxInflightBodyBytes: limit})
	held := &blockingBody{reading: make(chan struct{}), release: make(chan struct{})}
	first := httptest.NewRequest(http.MethodPut, pathUserAttr, held)
	first.ContentLength = 80 << 10
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), first)
	}()
	select {
	case <-held.reading:
	case <-time.After(30 * time.Second):
		t.Fatal("the first request's body was not read within 30 s")
	}
	t.Cleanup(func() { close(held.release); <-done })

	tooLarge := strings.Repeat(" ", 30<<10) + `{"ust":"bad","current_app":"CRM","name":"n","value":1}`
	wantError(t, serve(h, call{method: http.MethodPut, path: pathUserAttr, body: tooLarge}), http.StatusServiceUnavailable, attrcache.CodeInternalError)
	fits := strings.Repeat(" ", 10<<10) + `{"ust":"bad","current_app":"CRM","name":"n","value":1}`
	wantError(t, serve(h, call{method: http.MethodPut, path: pathUserAttr, body: fits}), http.StatusForbidden, attrcache.CodeNoSuchSession)
	wantOK(t, serve(h, call{method: http.MethodGet, path: "/healthz"}))
}
