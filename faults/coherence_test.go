package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/stacktest"
)

// coherenceBound is how soon after a write is acknowledged every instance must serve it
// (CONTRACT.md §4, "Across instances and crashes").
const coherenceBound = time.Second

// Two instances, A and B, on one database and one Redis: A writes while its own link to Redis is
// down (and, in the crash cases, dies right after its commit); B, whose Redis copy A could not
// update, must serve the acknowledged state within coherenceBound of A's answer.

// change is what A does while its link to Redis is down, and what B must then see.
type change struct {
	name string
	// do makes the change through a, for u (logged in on both, with attribute "k" = "v1"
	// cached), and returns its answer.
	do func(t *testing.T, a *stack, u user, username string) *response
	// seen reports whether b's answer for u shows the change.
	seen func(t *testing.T, b *stack, u user) (bool, string)
}

var coherenceChanges = []change{
	{
		name: "set never-expiring",
		do: func(t *testing.T, a *stack, u user, _ string) *response {
			return a.SetAttr(t.Context(), u, "k", "v2")
		},
		seen: attrIs("v2"),
	},
	{
		name: "set expiring",
		do: func(t *testing.T, a *stack, u user, _ string) *response {
			return a.Attr(t.Context(), http.MethodPut, u, "k", map[string]any{"value": "v2", "expiration": 3600})
		},
		seen: attrIs("v2"),
	},
	{
		name: "delete",
		do: func(t *testing.T, a *stack, u user, _ string) *response {
			return a.Attr(t.Context(), http.MethodDelete, u, "k", nil)
		},
		seen: func(t *testing.T, b *stack, u user) (bool, string) {
			got, res := b.GetAttr(t.Context(), u, "k")
			if !res.OK() {
				t.Fatalf("B's GET: %s", res)
			}
			return !got.Found, fmt.Sprintf("%+v", got)
		},
	},
	{
		name: "lock the user",
		do: func(t *testing.T, a *stack, _ user, username string) *response {
			if _, err := a.API.AdminSetLocked(t.Context(), username, true); err != nil {
				return &response{Err: err}
			}
			return &response{Status: http.StatusOK, Body: map[string]any{"status": "ok"}}
		},
		seen: ustRefused,
	},
	{
		name: "logout",
		do: func(t *testing.T, a *stack, u user, _ string) *response {
			return a.Call(t.Context(), http.MethodPost, "/zato/sso/user/logout",
				map[string]any{"ust": u.UST, "current_app": stacktest.App})
		},
		seen: ustRefused,
	},
}

// attrIs returns the check that B serves attribute "k" with value want.
func attrIs(want string) func(t *testing.T, b *stack, u user) (bool, string) {
	return func(t *testing.T, b *stack, u user) (bool, string) {
		got, res := b.GetAttr(t.Context(), u, "k")
		if !res.OK() {
			t.Fatalf("B's GET: %s", res)
		}
		return got.Found && got.Value == want, fmt.Sprintf("%+v", got)
	}
}

// ustRefused reports whether B refuses u's UST (a 4xx or a status other than ok), failing the
// test on a 5xx or no answer.
func ustRefused(t *testing.T, b *stack, u user) (bool, string) {
	_, res := b.GetAttr(t.Context(), u, "k")
	if res.Err != nil || res.Status >= 500 {
		t.Fatalf("B's GET: %s", res)
	}
	return !res.OK(), res.String()
}

func TestCoherencePartialPartition(t *testing.T) {
	for _, c := range coherenceChanges {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			a, b := newStack(t), newStack(t)
			u, username := coherenceUser(t, a, b)
			a.redisProxy.Down()
			t.Cleanup(a.redisProxy.Up)
			ack := acknowledge(t, a, c, u, username)
			awaitSeen(t, b, c, u, ack)
		})
	}
}

func TestCoherenceCrashAfterCommit(t *testing.T) {
	for _, c := range coherenceChanges {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			// A abandons its update of Redis right after the commit, as a process killed there
			// would, and is killed once it has answered.
			var crashing atomic.Bool
			a := newStackWith(t, stacktest.Options{AfterCommit: func(context.Context) bool { return !crashing.Load() }})
			b := newStack(t)
			u, username := coherenceUser(t, a, b)
			a.redisProxy.Down()
			t.Cleanup(a.redisProxy.Up)
			crashing.Store(true)
			ack := acknowledge(t, a, c, u, username)
			a.Kill()
			awaitSeen(t, b, c, u, ack)
		})
	}
}

// coherenceUser creates a user through a, logged in, with attribute "k" = "v1" cached in Redis,
// as B serves it; it returns the user and their username.
func coherenceUser(t *testing.T, a, b *stack) (user, string) {
	t.Helper()
	prefix := fmt.Sprintf("coherence-%d", time.Now().UnixNano())
	u := a.NewUsers(t, prefix, 1)[0]
	if res := a.SetAttr(t.Context(), u, "k", "v1"); !res.OK() {
		t.Fatalf("A's PUT of v1: %s", res)
	}
	if ok, got := attrIs("v1")(t, b, u); !ok {
		t.Fatalf("B serves %s before the change, want v1", got)
	}
	return u, prefix + "-0"
}

// acknowledge makes the change through a and returns when a acknowledged it.
func acknowledge(t *testing.T, a *stack, c change, u user, username string) time.Time {
	t.Helper()
	if res := c.do(t, a, u, username); !res.OK() {
		t.Fatalf("A's %s: %s, want ok", c.name, res)
	}
	return time.Now()
}

// awaitSeen polls b until it shows the change, failing the test unless it does within
// coherenceBound of ack.
func awaitSeen(t *testing.T, b *stack, c change, u user, ack time.Time) {
	t.Helper()
	for {
		seen, got := c.seen(t, b, u)
		if seen {
			t.Logf("B shows the change %v after A's acknowledgement", time.Since(ack).Round(time.Millisecond))
			return
		}
		if time.Since(ack) > coherenceBound {
			t.Fatalf("B still answers %s %v after A acknowledged the %s, want the change within %v", got, time.Since(ack).Round(time.Millisecond), c.name, coherenceBound)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
