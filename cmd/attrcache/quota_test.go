package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/attrcache/attrcache/internal/testenv"
)

// TestQuotaOverHTTP runs serve with quotas of 3 attributes and 64 bytes of values per user and
// checks, over HTTP, that a write over either answers 403 E009103 and stores nothing (single,
// many, session attributes), while writes within them work: a value replaced by one of the
// same size at the limit, and a new one once another is deleted.
func TestQuotaOverHTTP(t *testing.T) {
	createUser(t, "create-user", "quota-holder", "Qu0ta-holder")
	s := startServe(t, map[string]string{"ATTRCACHE_QUOTA_MAX_ATTRS": "3", "ATTRCACHE_QUOTA_MAX_BYTES": "64"})
	ust := s.login(t, "quota-holder", "Qu0ta-holder", "")
	str := func(n int) string { return strings.Repeat("x", n-2) } // a JSON string of n bytes

	type step struct {
		name   string
		method string
		path   string
		body   map[string]any
		want   string // "" for success, else the sub_status
	}
	steps := []step{
		{"two attributes", http.MethodPut, pathUserAttr, map[string]any{"data": []any{
			map[string]any{"name": "a", "value": str(20)}, map[string]any{"name": "b", "value": str(20)}}}, ""},
		{"a session attribute, up to both limits", http.MethodPut, pathSessionAttr,
			map[string]any{"target_ust": ust, "name": "s", "value": str(24)}, ""},
		{"a fourth attribute", http.MethodPut, pathUserAttr, map[string]any{"name": "c", "value": 1}, "E009103"},
		{"a fourth attribute by create", http.MethodPost, pathUserAttr, map[string]any{"name": "c", "value": 1}, "E009103"},
		{"a second session attribute", http.MethodPut, pathSessionAttr,
			map[string]any{"target_ust": ust, "name": "t", "value": 1}, "E009103"},
		{"many: a replacement and a new one", http.MethodPut, pathUserAttr, map[string]any{"data": []any{
			map[string]any{"name": "a", "value": str(2)}, map[string]any{"name": "c", "value": 1}}}, "E009103"},
		{"a larger value", http.MethodPatch, pathUserAttr, map[string]any{"name": "a", "value": str(21)}, "E009103"},
		{"the same size at the limit", http.MethodPut, pathUserAttr, map[string]any{"name": "a", "value": str(20)}, ""},
		{"an encrypted value counts as stored, larger", http.MethodPut, pathUserAttr,
			map[string]any{"name": "b", "value": str(2), "encrypt": true}, "E009103"},
		{"deleting frees room", http.MethodDelete, pathUserAttr, map[string]any{"name": "b"}, ""},
		{"the freed room is used", http.MethodPost, pathUserAttr, map[string]any{"name": "c", "value": str(20)}, ""},
	}
	for _, st := range steps {
		st.body["ust"], st.body["current_app"] = ust, testApp
		status, answer := s.call(t, st.method, st.path, st.body)
		if st.want == "" {
			if status != http.StatusOK || answer["status"] != "ok" {
				t.Errorf("%s: HTTP %d %v, want 200 ok", st.name, status, answer)
			}
			continue
		}
		if status != http.StatusForbidden || answer["status"] != "error" || fmt.Sprint(answer["sub_status"]) != "["+st.want+"]" {
			t.Errorf("%s: HTTP %d %v, want 403, status error, sub_status [%s]", st.name, status, answer, st.want)
		}
	}

	// What the service serves (Redis first) is what the successful writes left.
	want := map[string]float64{"a": 20, "c": 20}
	answer := s.mustCall(t, http.MethodGet, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp,
		"data": []string{"a", "b", "c"}})
	result, _ := answer["result"].(map[string]any)
	for _, name := range []string{"a", "b", "c"} {
		attr, _ := result[name].(map[string]any)
		value, _ := attr["value"].(string)
		if size, ok := want[name]; (attr != nil) != ok || ok && float64(len(value)+2) != size {
			t.Errorf("GET %s: %v, want a value of %v bytes (none when 0)", name, result[name], size)
		}
	}
	names := s.mustCall(t, http.MethodGet, pathSessionAttr+"/names", map[string]any{"ust": ust, "current_app": testApp, "target_ust": ust})
	if got := fmt.Sprint(names["result"]); got != "[s]" {
		t.Errorf("session attribute names: %s, want [s]", got)
	}
}

// TestAbsentMarkersBoundedOverHTTP sends the reproduction of issue #11's finding 8 to serve with
// cache.absent_max at 100: 20 GETs of 1,000 missing names each. Redis must then hold at most 100
// "absent" markers of the user, where it held 20,000 before.
func TestAbsentMarkersBoundedOverHTTP(t *testing.T) {
	const (
		absentMax = 100
		gets      = 20
		perGet    = 1000
	)
	userID := createUser(t, "create-user", "absent-flood", "Abs3nt-flood")
	s := startServe(t, map[string]string{"ATTRCACHE_CACHE_ABSENT_MAX": fmt.Sprint(absentMax)})
	ust := s.login(t, "absent-flood", "Abs3nt-flood", "")

	rdb, err := testenv.RedisClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	markers := 0
	for i := range gets {
		names := make([]string, perGet)
		keys := make([]string, perGet)
		for j := range names {
			names[j] = fmt.Sprintf("flood-%02d-%04d", i, j)
			keys[j] = testPrefix + "{" + userID + "}:a:" + names[j]
		}
		answer := s.mustCall(t, http.MethodGet, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "data": names})
		if result, _ := answer["result"].(map[string]any); len(result) != perGet || result[names[0]] != nil {
			t.Fatalf("GET %d of %d missing names: %d results, %s: %v; want every name, null", i, perGet, len(result), names[0], result[names[0]])
		}
		values, err := rdb.MGet(t.Context(), keys...).Result() // one user's keys: one hash slot
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for _, v := range values {
			if v == "n" {
				markers++
			}
		}
	}
	if markers > absentMax {
		t.Errorf("after %d GETs of %d missing names Redis holds %d absent markers, want at most %d", gets, perGet, markers, absentMax)
	}
}
