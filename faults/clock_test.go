package faults_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/stacktest"
)

// clockBound is how long the stacks may take to serve a write: the bound every instance keeps.
const clockBound = time.Second

func TestRecreatedAttrServedWhenDBClockIsBehind(t *testing.T) {
	onTime := env.NewStack(t, stacktest.Options{GroupCommit: groupCommit})
	behind := env.NewStack(t, stacktest.Options{GroupCommit: groupCommit, FrozenDBClock: time.Now().Add(-time.Hour)})
	users := onTime.NewUsers(t, "clock", 2)
	scopes := []struct {
		name string
		path string
		// owner is the input that names the attribute's scope, besides the caller's ust.
		owner func(u stacktest.User) map[string]any
	}{
		{"user attribute", "/zato/sso/user/attr", func(stacktest.User) map[string]any { return nil }},
		{"session attribute", "/zato/sso/session/attr", func(u stacktest.User) map[string]any {
			return map[string]any{"target_ust": u.UST}
		}},
	}
	for i, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			u := users[i]
			call := func(s *stacktest.Stack, method string, extra map[string]any) *stacktest.Response {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				defer cancel()
				input := map[string]any{"ust": u.UST, "current_app": stacktest.App, "name": "recreated"}
				for k, v := range sc.owner(u) {
					input[k] = v
				}
				for k, v := range extra {
					input[k] = v
				}
				res := s.Call(ctx, method, sc.path, input)
				if !res.OK() {
					t.Fatalf("%s %s: %s, want ok", method, sc.path, res)
				}
				return res
			}
			call(onTime, http.MethodPut, map[string]any{"value": "first"})
			call(onTime, http.MethodGet, nil) // the cache holds it
			call(onTime, http.MethodDelete, nil)
			call(behind, http.MethodPut, map[string]any{"value": "again"})

			for _, s := range []struct {
				name  string
				stack *stacktest.Stack
			}{{"the stack on time", onTime}, {"the stack behind", behind}} {
				deadline := time.Now().Add(clockBound)
				for {
					res := call(s.stack, http.MethodGet, nil)
					found, _ := res.Body["found"].(bool)
					if found && res.Body["value"] == "again" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s reads found=%v value=%v %v after the re-creation, want the re-created value",
							s.name, found, res.Body["value"], clockBound)
					}
					time.Sleep(20 * time.Millisecond) // poll interval
				}
			}
		})
	}
}
