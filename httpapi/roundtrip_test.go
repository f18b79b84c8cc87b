package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// redisTrips records the Redis round trips made for the requests whose context carries it: one
// entry per command sent alone or per pipeline, naming its commands.
type redisTrips struct {
	mu    sync.Mutex
	trips []string
}

type redisTripsKey struct{}

func (r *redisTrips) add(cmds ...redis.Cmder) {
	names := make([]string, len(cmds))
	for i, cmd := range cmds {
		names[i] = cmd.Name()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trips = append(r.trips, strings.Join(names, "+"))
}

func (r *redisTrips) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "[" + strings.Join(r.trips, ", ") + "]"
}

// tripCounter is the go-redis hook, added to the test Redis client, that feeds a request's
// redisTrips.
type tripCounter struct{}

func (tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if trips, ok := ctx.Value(redisTripsKey{}).(*redisTrips); ok {
			trips.add(cmd)
		}
		return next(ctx, cmd)
	}
}

func (tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if trips, ok := ctx.Value(redisTripsKey{}).(*redisTrips); ok {
			trips.add(cmds...)
		}
		return next(ctx, cmds)
	}
}

// doCounted is do, with the Redis round trips the request made.
func doCounted(t *testing.T, method, path string, input map[string]any) (*response, *redisTrips) {
	t.Helper()
	trips := &redisTrips{}
	req := httptest.NewRequestWithContext(context.WithValue(context.Background(), redisTripsKey{}, trips),
		method, path, bytes.NewReader([]byte(jsonOf(input))))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	res := &response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(res.raw, &res.body)
	return res, trips
}

// A read of cached attributes, the checks of the caller and of their right to the attributes
// included, is one Redis round trip: one MGET for a caller reading their own user's attributes or
// sessions, one pipeline of an MGET per user otherwise. It reaches MySQL for none of it.
func TestCachedAttrReadIsOneRedisRoundTrip(t *testing.T) {
	owner := newUser(t, false, nil)
	superUser := newUser(t, true, nil)
	cases := []struct {
		name      string
		target    attrTarget
		wantTrips string
	}{
		{"own user attributes", userAttrs(owner), "[mget]"},
		{"own session's attributes", sessionAttrs(owner, owner.ust), "[mget]"},
		{"another user's attributes, by a super-user", attrTarget{
			name: "other user", base: pathUserAttr, caller: superUser, owner: map[string]any{"user_id": owner.id}}, "[mget+mget]"},
		{"another user's session's attributes, by a super-user", sessionAttrs(superUser, owner.ust), "[mget+mget]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.target.put(t, map[string]any{"data": []any{item("rt-a", "first"), item("rt-b", 2)}})
			reads := []struct {
				suffix string
				keys   map[string]any
				check  func(t *testing.T, res *response)
			}{
				{"", map[string]any{"name": "rt-a"}, func(t *testing.T, res *response) {
					if res.body["found"] != true || res.body["value"] != "first" {
						t.Fatalf("GET rt-a: %s", res.raw)
					}
				}},
				{"", map[string]any{"data": []any{"rt-a", "rt-b", "rt-missing"}}, func(t *testing.T, res *response) {
					result, _ := res.body["result"].(map[string]any)
					if result == nil || result["rt-missing"] != nil || result["rt-b"] == nil {
						t.Fatalf("GET many: %s", res.raw)
					}
				}},
				{suffixExists, map[string]any{"name": "rt-b"}, func(t *testing.T, res *response) {
					if res.body["result"] != true {
						t.Fatalf("exists rt-b: %s", res.raw)
					}
				}},
			}
			for _, read := range reads {
				// The first read fills what the writes did not cache (the absent marker of
				// rt-missing); the second is the cached read.
				tc.target.call(t, http.MethodGet, read.suffix, read.keys)
				res, trips := doCounted(t, http.MethodGet, tc.target.base+read.suffix, tc.target.input(read.keys))
				wantOK(t, res)
				read.check(t, res)
				if got := trips.String(); got != tc.wantTrips {
					t.Errorf("GET%s %v: Redis round trips %s, want %s", read.suffix, read.keys, got, tc.wantTrips)
				}
			}
		})
	}
}
