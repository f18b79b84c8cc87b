package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
)

// versionOf returns the version key of a write's answer or a GET's, failing the test when it is
// not a positive integer.
func versionOf(t *testing.T, res *response) int64 {
	t.Helper()
	n, ok := res.body["version"].(float64)
	if !ok || n <= 0 || n != float64(int64(n)) {
		t.Fatalf("version = %v in %s, want a positive integer", res.body["version"], res.raw)
	}
	return int64(n)
}

// withHeader sends keys to the target's base path with one header.
func (a attrTarget) withHeader(method, header, value string, keys map[string]any) *response {
	return serve(handler, call{method: method, path: a.base, body: jsonOf(a.input(keys)), header: map[string]string{header: value}})
}

// TestCompareAndSet runs versions, ETag, if_version and If-Match through every verb on user and
// session attributes: a write whose version does not match answers 409 E009101 and writes nothing.
func TestCompareAndSet(t *testing.T) {
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			res := target.call(t, http.MethodPut, "", map[string]any{"name": "n", "value": 1})
			wantOK(t, res)
			v1 := versionOf(t, res)

			got := target.call(t, http.MethodGet, "", map[string]any{"name": "n"})
			if versionOf(t, got) != v1 || got.header.Get("ETag") != `"`+strconv.FormatInt(v1, 10)+`"` {
				t.Fatalf("GET: version %v, ETag %q; want %d", got.body["version"], got.header.Get("ETag"), v1)
			}

			wantError(t, target.call(t, http.MethodPut, "", map[string]any{"name": "n", "value": 2, "if_version": v1 + 1}),
				http.StatusConflict, attrcache.CodeVersionMismatch)
			wantValueIs(t, target, "n", 1.0)

			res = target.withHeader(http.MethodPut, "If-Match", `"`+strconv.FormatInt(v1, 10)+`"`, map[string]any{"name": "n", "value": 2})
			wantOK(t, res)
			v2 := versionOf(t, res)
			if v2 <= v1 {
				t.Fatalf("version after a write = %d, want above %d", v2, v1)
			}
			wantError(t, target.withHeader(http.MethodPut, "If-Match", strconv.FormatInt(v1, 10), map[string]any{"name": "n", "value": 3}),
				http.StatusConflict, attrcache.CodeVersionMismatch)
			wantValueIs(t, target, "n", 2.0)

			wantError(t, target.call(t, http.MethodPut, "", map[string]any{"name": "n", "value": 3, "if_version": 0}),
				http.StatusConflict, attrcache.CodeVersionMismatch)
			wantError(t, target.call(t, http.MethodPost, "", map[string]any{"name": "n", "value": 3, "if_version": v1}),
				http.StatusConflict, attrcache.CodeVersionMismatch)
			res = target.call(t, http.MethodPatch, "", map[string]any{"name": "n", "value": 3, "if_version": v2})
			wantOK(t, res)
			v3 := versionOf(t, res)

			wantError(t, target.call(t, http.MethodDelete, "", map[string]any{"name": "n", "if_version": v2}),
				http.StatusConflict, attrcache.CodeVersionMismatch)
			wantValueIs(t, target, "n", 3.0)
			wantOK(t, target.withHeader(http.MethodDelete, "If-Match", `"`+strconv.FormatInt(v3, 10)+`"`, map[string]any{"name": "n"}))
			target.wantNotFound(t, "n")

			res = target.call(t, http.MethodPost, "", map[string]any{"name": "n", "value": 4, "if_version": 0})
			wantOK(t, res)
			if v4 := versionOf(t, res); v4 <= v3 {
				t.Fatalf("version after delete and create = %d, want above %d", v4, v3)
			}
			wantOK(t, target.call(t, http.MethodPut, "", map[string]any{"name": "fresh", "value": 1, "if_version": "0"}))
		})
	}
}

// TestCompareAndSetMany checks that an atomic many-item write with one stale if_version writes
// nothing, and that a matching one answers the versions of every item.
func TestCompareAndSetMany(t *testing.T) {
	target := userAttrs(newUser(t, false, nil))
	res := target.call(t, http.MethodPut, "", map[string]any{"data": []any{item("a", 1), item("b", 1)}})
	wantOK(t, res)
	versions, _ := res.body["versions"].(map[string]any)
	if len(versions) != 2 {
		t.Fatalf("versions = %v, want one per item", res.body["versions"])
	}
	va, vb := int64(versions["a"].(float64)), int64(versions["b"].(float64))

	stale := map[string]any{"name": "b", "value": 2, "if_version": vb - 1}
	wantError(t, target.call(t, http.MethodPut, "", map[string]any{"data": []any{
		map[string]any{"name": "a", "value": 2, "if_version": va}, stale}}), http.StatusConflict, attrcache.CodeVersionMismatch)
	wantValueIs(t, target, "a", 1.0)

	wantError(t, target.call(t, http.MethodDelete, "", map[string]any{"data": []any{
		map[string]any{"name": "a", "if_version": va}, map[string]any{"name": "b", "if_version": vb + 1}}}),
		http.StatusConflict, attrcache.CodeVersionMismatch)
	wantValueIs(t, target, "a", 1.0)

	res = target.call(t, http.MethodPut, "", map[string]any{"if_version": va, "data": []any{item("a", 3)}})
	wantOK(t, res)
	if got, _ := res.body["versions"].(map[string]any)["a"].(float64); int64(got) <= va {
		t.Fatalf("versions = %v, want a above %d", res.body["versions"], va)
	}
}

// TestCompareAndSetBadInput checks that a condition of the wrong form is refused before anything
// is written.
func TestCompareAndSetBadInput(t *testing.T) {
	target := userAttrs(newUser(t, false, nil))
	tests := []struct {
		name          string
		header, value string
		keys          map[string]any
		status        int
	}{
		{"if_version not an integer", "", "", map[string]any{"if_version": "x"}, http.StatusBadRequest},
		{"if_version a fraction", "", "", map[string]any{"if_version": 1.5}, http.StatusBadRequest},
		{"if_version negative", "", "", map[string]any{"if_version": -1}, http.StatusForbidden},
		{"an item's if_version not an integer", "", "", map[string]any{"name": nil, "data": []any{
			map[string]any{"name": "n", "value": 1, "if_version": true}}}, http.StatusForbidden},
		{"If-Match not a version", "If-Match", `"abc"`, nil, http.StatusForbidden},
		{"If-Match any", "If-Match", `*`, nil, http.StatusForbidden},
		{"If-Match two versions", "If-Match", `"1", "2"`, nil, http.StatusForbidden},
		{"If-Match and if_version differ", "If-Match", `"1"`, map[string]any{"if_version": 2}, http.StatusForbidden},
		{"If-Match on the many form", "If-Match", `"1"`, map[string]any{"name": nil, "data": []any{item("n", 1)}}, http.StatusForbidden},
		{"if_version negative, per item", "", "", map[string]any{"if_version": -1, "atomic": false}, http.StatusForbidden},
		{"a name twice with if_version", "", "", map[string]any{"name": nil, "data": []any{
			map[string]any{"name": "n", "value": 1, "if_version": 5}, item("n", 2)}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := map[string]any{"name": "n", "value": 1}
			for k, v := range tt.keys {
				if v == nil {
					delete(keys, k)
					continue
				}
				keys[k] = v
			}
			res := target.withHeader(http.MethodPut, tt.header, tt.value, keys)
			if tt.header == "" {
				res = target.call(t, http.MethodPut, "", keys)
			}
			wantError(t, res, tt.status, attrcache.CodeInvalidInput)
			if msg, _ := res.body["message"].(string); !strings.Contains(msg, "version") && !strings.Contains(msg, "If-Match") {
				t.Errorf("message %q, want one naming the version", msg)
			}
			target.wantNotFound(t, "n")
		})
	}
}

// TestPerItemResults sends many writes and deletes with atomic false, mixing good items with
// items over a limit, repeated, existing (create) and with a stale if_version: the good ones are
// written, the answer lists each item's result in input order, and status is warning.
func TestPerItemResults(t *testing.T) {
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			res := target.call(t, http.MethodPut, "", map[string]any{"data": []any{item("old", 1), item("kept", 1)}})
			wantOK(t, res)
			oldVersion := int64(res.body["versions"].(map[string]any)["old"].(float64))

			res = target.call(t, http.MethodPost, "", map[string]any{"atomic": false, "data": []any{
				item("new", 1),
				item("", 1),
				item("old", 2),
				item("new", 3),
				map[string]any{"name": "cas", "value": 1, "if_version": 7},
				map[string]any{"name": "big", "value": strings.Repeat("x", attrcache.DefaultMaxValueBytes)},
				item("second", 2),
			}})
			if res.status != http.StatusOK || res.body["status"] != "warning" {
				t.Fatalf("got HTTP %d %s, want 200 with status warning", res.status, res.raw)
			}
			wantJSON(t, "sub_status", res.body["sub_status"],
				[]any{attrcache.CodeInvalidInput, attrcache.CodeAttrExists, attrcache.CodeVersionMismatch})
			wantResults(t, res, []string{"ok", attrcache.CodeInvalidInput, attrcache.CodeAttrExists, attrcache.CodeInvalidInput,
				attrcache.CodeVersionMismatch, attrcache.CodeInvalidInput, "ok"})
			wantValueIs(t, target, "new", 1.0)
			wantValueIs(t, target, "second", 2.0)
			wantValueIs(t, target, "old", 1.0)
			target.wantNotFound(t, "cas")
			target.wantNotFound(t, "big")
			if versions, _ := res.body["versions"].(map[string]any); len(versions) != 2 {
				t.Errorf("versions = %v, want those of new and second", res.body["versions"])
			}

			res = target.call(t, http.MethodDelete, "", map[string]any{"atomic": false, "data": []any{
				map[string]any{"name": "old", "if_version": oldVersion + 1}, "kept", "ghost"}})
			if res.status != http.StatusOK || res.body["status"] != "warning" {
				t.Fatalf("got HTTP %d %s, want 200 with status warning", res.status, res.raw)
			}
			wantResults(t, res, []string{attrcache.CodeVersionMismatch, "ok", "ok"})
			wantValueIs(t, target, "old", 1.0)
			target.wantNotFound(t, "kept")

			res = target.call(t, http.MethodPut, "", map[string]any{"atomic": false, "data": []any{item("a", 1), item("b", 2)}})
			wantOK(t, res)
			wantResults(t, res, []string{"ok", "ok"})
		})
	}
}

// TestCASConflictsCounted checks attrcache_cas_conflicts_total: one for a refused single write,
// one per refused item of a per-item write.
func TestCASConflictsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{Metrics: metrics.New(reg), MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	target := userAttrs(newUser(t, false, nil))
	put := func(keys map[string]any) {
		serve(h, call{method: http.MethodPut, path: target.base, body: jsonOf(target.input(keys))})
	}
	put(map[string]any{"data": []any{item("a", 1), item("b", 1)}})
	put(map[string]any{"name": "a", "value": 2, "if_version": 1})
	put(map[string]any{"atomic": false, "data": []any{
		map[string]any{"name": "a", "value": 2, "if_version": 1}, map[string]any{"name": "b", "value": 2, "if_version": 0}, item("c", 1)}})
	if got := casConflictsCounted(t, h); got != 3 {
		t.Errorf("attrcache_cas_conflicts_total = %v, want 3", got)
	}
}

// casConflictsCounted returns the value of attrcache_cas_conflicts_total that h serves.
func casConflictsCounted(t *testing.T, h http.Handler) float64 {
	t.Helper()
	res := serve(h, call{method: http.MethodGet, path: "/metrics"})
	for line := range strings.Lines(string(res.raw)) {
		if value, ok := strings.CutPrefix(line, "attrcache_cas_conflicts_total "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				t.Fatalf("attrcache_cas_conflicts_total: %v", err)
			}
			return n
		}
	}
	t.Fatalf("GET /metrics has no attrcache_cas_conflicts_total: HTTP %d", res.status)
	return 0
}

// wantResults fails the test unless res's result lists one item per code, in order: "ok" for an
// item with status ok and a version (or none, for a delete), else status error with that code.
func wantResults(t *testing.T, res *response, codes []string) {
	t.Helper()
	results, _ := res.body["result"].([]any)
	if len(results) != len(codes) {
		t.Fatalf("result = %v, want %d items", res.body["result"], len(codes))
	}
	for i, code := range codes {
		r, _ := results[i].(map[string]any)
		sub, _ := r["sub_status"].([]any)
		switch {
		case code == "ok" && (r["status"] != "ok" || len(sub) != 0):
			t.Errorf("result[%d] = %v, want status ok", i, r)
		case code != "ok" && (r["status"] != "error" || len(sub) != 1 || sub[0] != code || r["version"] != nil):
			t.Errorf("result[%d] = %v, want status error, sub_status [%s] and version null", i, r, code)
		}
	}
}

// wantValueIs fails the test unless the named attribute is found with value want.
func wantValueIs(t *testing.T, target attrTarget, name string, want any) {
	t.Helper()
	got := target.get(t, name)
	if got["found"] != true || got["value"] != want {
		t.Fatalf("GET %s = %v, want value %v", name, got, want)
	}
}
