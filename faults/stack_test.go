package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/internal/faultproxy"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

const app = "CRM"

// requestTimeout bounds one HTTP request of the load or the checks. It is far above what any
// request needs, even to a slowed backend; a request that hits it counts as failed.
const requestTimeout = 30 * time.Second

// groupCommit is the group commit of the stack: that of configs/attrcache.yaml, so that a write
// is acknowledged only after the batch holding it committed.
var groupCommit = persist.GroupCommit{MaxRows: 256, MaxWait: time.Millisecond, Workers: 4}

// stack is attrcache wired as cmd/attrcache wires it, reaching MySQL and Redis through a proxy
// each, and served over HTTP.
type stack struct {
	mysqlProxy *faultproxy.Proxy
	redisProxy *faultproxy.Proxy
	api        *sso.API
	server     *httptest.Server
	client     *http.Client
}

// newStack builds a stack over fresh proxies; t.Cleanup takes it down.
func newStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &stack{
		mysqlProxy: startProxy(t, mysqlAddr(t)),
		redisProxy: startProxy(t, env.redisAddr),
		client:     &http.Client{Timeout: requestTimeout},
	}

	db, err := persist.Open(ctx, s.proxiedDSN(t), env.keys, persist.WithGroupCommit(groupCommit))
	if err != nil {
		t.Fatalf("persist.Open through the proxy: %v", err)
	}
	t.Cleanup(func() { closeOrFail(t, "mysql", db) })
	// The options of cmd/attrcache's redisOptions: a Redis that is down or slow costs a request
	// about a second before it falls back to MySQL.
	rdb := redis.NewClient(&redis.Options{
		Addr:          s.redisProxy.Addr(),
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		DialerRetries: 1,
		MaxRetries:    1,
	})
	t.Cleanup(func() { closeOrFail(t, "redis client", rdb) })
	store := cache.New(rdb, cache.Options{Prefix: env.prefix}, db, db)
	t.Cleanup(func() { closeOrFail(t, "cache", store) }) // runs before the database closes

	cfg := sso.DefaultConfig()
	cfg.Apps = []string{app}
	cfg.Hash = sso.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}
	if s.api, err = sso.New(cfg, env.keys, store, store, cache.NewAttrStore(store, db)); err != nil {
		t.Fatalf("sso.New: %v", err)
	}
	ready := func(ctx context.Context) error {
		return errors.Join(db.Ping(ctx), store.Ping(ctx))
	}
	s.server = httptest.NewServer(httpapi.NewServer(s.api, httpapi.Options{Ready: ready}))
	t.Cleanup(s.server.Close)
	return s
}

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Listen(target)
	if err != nil {
		t.Fatalf("starting a proxy to %s: %v", target, err)
	}
	t.Cleanup(func() { closeOrFail(t, "proxy", p) })
	return p
}

func closeOrFail(t *testing.T, what string, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("closing %s: %v", what, err)
	}
}

// mysqlAddr returns the host:port of the test database's server.
func mysqlAddr(t *testing.T) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(env.dsn)
	if err != nil {
		t.Fatalf("parsing the test DSN: %v", err)
	}
	return cfg.Addr
}

// proxiedDSN returns the test database's DSN with the MySQL proxy as its server. Reads and
// writes time out well above what any statement of the load needs, so that a connection the
// proxy holds up does not hang the stack.
func (s *stack) proxiedDSN(t *testing.T) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(env.dsn)
	if err != nil {
		t.Fatalf("parsing the test DSN: %v", err)
	}
	cfg.Addr = s.mysqlProxy.Addr()
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	return cfg.FormatDSN()
}

// user is a regular user of a stack, logged in.
type user struct {
	id  string
	ust string
}

// newUsers creates n approved regular users and logs each in over HTTP.
func (s *stack) newUsers(t *testing.T, n int) []user {
	t.Helper()
	users := make([]user, n)
	for i := range users {
		password := fmt.Sprintf("faults-pass-%s-%d", t.Name(), i)
		username := fmt.Sprintf("%s-%d", t.Name(), i)
		u, err := s.api.AdminCreateUser(context.Background(), sso.CreateUserInput{Username: username, Password: &password}, false)
		if err != nil {
			t.Fatalf("AdminCreateUser(%s): %v", username, err)
		}
		res := s.call(context.Background(), http.MethodPost, "/zato/sso/user/login",
			map[string]any{"username": username, "password": password, "current_app": app})
		ust, _ := res.body["ust"].(string)
		if !res.ok() || ust == "" {
			t.Fatalf("login of %s: %s, want status ok with a ust", username, res)
		}
		users[i] = user{id: u.UserID, ust: ust}
	}
	return users
}

// response is the stack's answer to one request: the HTTP status and decoded body, or the
// transport error that kept it from answering.
type response struct {
	status int
	body   map[string]any
	err    error
}

// ok reports whether r is a success: HTTP 200 with status ok.
func (r *response) ok() bool {
	return r.err == nil && r.status == http.StatusOK && r.body["status"] == "ok"
}

// unavailable reports whether r is the answer to a backend that is down: 503 with E008004.
func (r *response) unavailable() bool {
	subStatus, _ := r.body["sub_status"].([]any)
	return r.err == nil && r.status == http.StatusServiceUnavailable && slices.Equal(subStatus, []any{"E008004"})
}

func (r *response) String() string {
	if r.err != nil {
		return "no response: " + r.err.Error()
	}
	return fmt.Sprintf("HTTP %d status %v sub_status %v", r.status, r.body["status"], r.body["sub_status"])
}

// call sends input as the JSON body of a request to the stack and decodes the answer.
func (s *stack) call(ctx context.Context, method, path string, input map[string]any) *response {
	body, err := json.Marshal(input)
	if err != nil {
		return &response{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, method, s.server.URL+path, bytes.NewReader(body))
	if err != nil {
		return &response{err: err}
	}
	httpRes, err := s.client.Do(req)
	if err != nil {
		return &response{err: err}
	}
	defer httpRes.Body.Close()
	res := &response{status: httpRes.StatusCode}
	if err := json.NewDecoder(httpRes.Body).Decode(&res.body); err != nil {
		res.err = fmt.Errorf("HTTP %d with a body that is not a JSON object: %w", httpRes.StatusCode, err)
	}
	return res
}

// setAttr sets u's attribute name to value.
func (s *stack) setAttr(ctx context.Context, u user, name, value string) *response {
	return s.call(ctx, http.MethodPut, "/zato/sso/user/attr",
		map[string]any{"ust": u.ust, "current_app": app, "name": name, "value": value})
}

// attrValue is what a read of one attribute found.
type attrValue struct {
	found bool
	value string
}

// getAttr reads u's attribute name; the value is meaningful when the response is ok.
func (s *stack) getAttr(ctx context.Context, u user, name string) (attrValue, *response) {
	res := s.call(ctx, http.MethodGet, "/zato/sso/user/attr",
		map[string]any{"ust": u.ust, "current_app": app, "name": name})
	if !res.ok() {
		return attrValue{}, res
	}
	found, _ := res.body["found"].(bool)
	value, isString := res.body["value"].(string)
	if found && !isString {
		res.err = fmt.Errorf("attribute %s: value %v is not the string the load wrote", name, res.body["value"])
	}
	return attrValue{found: found, value: value}, res
}

// waitReady polls /readyz until it answers as ready says (200 when true, 503 E008004 when
// false), failing the test if it does not within the bound.
func (s *stack) waitReady(t *testing.T, ready bool) {
	t.Helper()
	const bound = 20 * time.Second
	deadline := time.Now().Add(bound)
	for {
		res := s.call(context.Background(), http.MethodGet, "/readyz", map[string]any{})
		if (ready && res.ok()) || (!ready && res.unavailable()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %s after %v, want ready=%v", res, bound, ready)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
