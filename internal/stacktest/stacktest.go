// Package stacktest builds attrcache's whole stack in process, wired as cmd/attrcache wires it,
// over the test MariaDB and Redis, for the tests that drive it end to end over HTTP (faults/,
// soak/). Several stacks of one Env share its database and key prefix, as instances do.
package stacktest

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// App is the one current_app of every stack.
const App = "CRM"

// FeedInterval is how often a stack's change feed sequencer runs and its waiting readers look
// for new events (configs/attrcache.yaml's changes.feed_interval).
const FeedInterval = 20 * time.Millisecond

// RequestTimeout bounds one HTTP request to a stack: far above what any request needs, even to
// a slowed backend, so a request that hits it has failed.
const RequestTimeout = 30 * time.Second

// Env is what the stacks of one test package share: a fresh, migrated database and key prefix,
// the key ring, and direct connections to both backends (never through a proxy) for checks.
type Env struct {
	DSN       string
	Prefix    string
	Keys      *attrcache.Keyring
	MySQL     *sql.DB
	Redis     *redis.Client // the single server of testenv.RedisURL, even when tests run on a cluster
	RedisAddr string
	// Nodes are the database servers that stacks spread over: the nodes of
	// testenv.GaleraAddrs, or the one server of DSN.
	Nodes []string
	// stacks counts the stacks built on a node of Nodes, to spread them in turn.
	stacks atomic.Int64
}

// NewEnv prepares the Env of the test package name (see testenv.FreshDatabase). Close it after
// the tests.
func NewEnv(ctx context.Context, name string) (*Env, error) {
	e := new(Env)
	var err error
	if e.DSN, err = testenv.FreshDatabase(name); err != nil {
		return nil, err
	}
	if e.Prefix, err = testenv.RedisPrefix(name); err != nil {
		return nil, err
	}
	if e.Keys, err = attrcache.ParseSecretKey(attrcache.GenerateKey()); err != nil {
		return nil, err
	}
	if e.Nodes = testenv.GaleraAddrs(); len(e.Nodes) == 0 {
		e.Nodes = []string{e.MySQLAddr()}
	}
	if err := e.migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating the test database: %w", err)
	}
	if e.MySQL, err = e.OpenNode(e.MySQLAddr()); err != nil {
		return nil, fmt.Errorf("opening the test database: %w", err)
	}
	redisOpts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		e.MySQL.Close()
		return nil, fmt.Errorf("parsing the test Redis URL: %w", err)
	}
	e.RedisAddr = redisOpts.Addr
	e.Redis = redis.NewClient(redisOpts)
	return e, nil
}

// Close closes the direct connections.
func (e *Env) Close() error { return errors.Join(e.Redis.Close(), e.MySQL.Close()) }

func (e *Env) migrate(ctx context.Context) error {
	db, err := persist.Open(ctx, e.DSN, e.Keys)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Migrate(ctx)
	return err
}

// MySQLAddr returns the host:port of the test database's server.
func (e *Env) MySQLAddr() string {
	cfg, err := mysql.ParseDSN(e.DSN)
	if err != nil {
		panic(fmt.Sprintf("stacktest: the DSN testenv made does not parse: %v", err))
	}
	return cfg.Addr
}

// OpenNode opens a direct connection to the test database on the server at addr (a node of
// Nodes); the caller closes it. On a Galera cluster its reads wait until the node has applied
// what the cluster committed before them (wsrep_sync_wait), as the stacks' reads do.
func (e *Env) OpenNode(addr string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(e.DSN)
	if err != nil {
		return nil, err
	}
	cfg.Addr = addr
	if len(testenv.GaleraAddrs()) > 0 {
		if cfg.Params == nil {
			cfg.Params = make(map[string]string)
		}
		cfg.Params["wsrep_sync_wait"] = "1"
	}
	return sql.Open("mysql", cfg.FormatDSN())
}

// Options says where a stack finds its backends and how it commits.
type Options struct {
	// MySQLAddr and RedisAddr replace the servers' addresses (a fault proxy's, say). "" takes,
	// for MySQL, the next node of the Env's Nodes in turn (so that instances use different nodes
	// of a Galera cluster) and, for Redis, the Env's server.
	MySQLAddr string
	RedisAddr string
	// GroupCommit is persist's group commit; the zero value is configs/attrcache.yaml's shape
	// with four workers.
	GroupCommit persist.GroupCommit
	// FrozenDBClock, when not zero, is where the database clock of every connection of the
	// stack's store stands (testenv.WithFrozenDBClock): behind or ahead of the other stacks',
	// as an instance's after a failover to a node whose clock is off.
	FrozenDBClock time.Time
	// Redis, when not nil, is the client of the stack's cache instead of one of RedisAddr (a
	// private cluster's, say); the caller closes it.
	Redis redis.UniversalClient
	// Failover, when not nil, starts the cache's failover watch with these options, as serve
	// does.
	Failover *cache.FailoverOptions
	// AfterCommit is the cache's test hook (cache.Options.AfterCommit): false abandons the
	// update of Redis after a commit. nil: always update.
	AfterCommit func(ctx context.Context) bool
}

// Stack is one instance: the MySQL store, the Redis cache and its relay of the change log (with
// configs/attrcache.yaml's settings), the Go API and the HTTP server.
type Stack struct {
	DB     *persist.DB
	API    *sso.API
	Server *httptest.Server
	Client *http.Client

	stopRelay func()
}

// NewStack builds a stack over e; t.Cleanup takes it down.
func (e *Env) NewStack(t testing.TB, opts Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if opts.GroupCommit == (persist.GroupCommit{}) {
		opts.GroupCommit = persist.GroupCommit{MaxRows: 256, MaxWait: time.Millisecond, Workers: 4}
	}
	s := &Stack{Client: &http.Client{Timeout: RequestTimeout}}
	var err error
	dsn := e.dsnFor(t, opts.MySQLAddr)
	if !opts.FrozenDBClock.IsZero() {
		if dsn, err = testenv.WithFrozenDBClock(dsn, opts.FrozenDBClock); err != nil {
			t.Fatal(err)
		}
	}
	s.DB, err = persist.Open(ctx, dsn, e.Keys, persist.WithGroupCommit(opts.GroupCommit))
	if err != nil {
		t.Fatalf("persist.Open: %v", err)
	}
	t.Cleanup(func() { CloseOrFail(t, "mysql", s.DB) })
	// The timeouts of cmd/attrcache's redisOptions: a Redis that is down or slow costs a
	// request about a second before it falls back to MySQL.
	rdb := opts.Redis
	if rdb == nil {
		rdb = redis.NewClient(&redis.Options{
			Addr:          cmp.Or(opts.RedisAddr, e.RedisAddr),
			DialTimeout:   time.Second,
			ReadTimeout:   time.Second,
			WriteTimeout:  time.Second,
			DialerRetries: 1,
			MaxRetries:    1,
		})
		t.Cleanup(func() { CloseOrFail(t, "redis client", rdb) })
	}
	store := cache.New(rdb, cache.Options{Prefix: e.Prefix, AfterCommit: opts.AfterCommit}, s.DB, s.DB)
	t.Cleanup(func() { CloseOrFail(t, "cache", store) }) // runs before the database closes
	relay := cache.NewRelay(store, s.DB, cache.RelayOptions{})
	stopRelay := relay.Start(context.Background())
	// The change feed's sequencer, as serve runs it (configs/attrcache.yaml's interval).
	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		s.DB.RunFeedSequencer(feedCtx, FeedInterval, cache.DefaultRelayRetention, nil)
	}()
	s.stopRelay = sync.OnceFunc(func() {
		stopFeed()
		<-feedDone
		stopRelay()
	})
	t.Cleanup(s.stopRelay) // runs before the cache and database close
	if opts.Failover != nil {
		failover := *opts.Failover
		if failover.Replayer == nil {
			failover.Replayer = relay
		}
		store.WatchFailovers(failover)
	}

	cfg := sso.DefaultConfig()
	cfg.Apps = []string{App}
	cfg.Hash = sso.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}
	cfg.Feed, cfg.FeedPollInterval = s.DB, FeedInterval
	if s.API, err = sso.New(cfg, e.Keys, store, store, cache.NewAttrStore(store, s.DB)); err != nil {
		t.Fatalf("sso.New: %v", err)
	}
	ready := func(ctx context.Context) error { return errors.Join(s.DB.Ping(ctx), store.Ping(ctx)) }
	s.Server = httptest.NewServer(httpapi.NewServer(s.API, httpapi.Options{Ready: ready}))
	t.Cleanup(s.Server.Close)
	return s
}

// Kill ends the instance as far as the others can tell, as a SIGKILL would: its relay and feed sequencer stop
// and its HTTP server closes, and nothing it held in memory does anything any more.
func (s *Stack) Kill() {
	s.stopRelay()
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// dsnFor returns the test database's DSN at addr ("" takes the next node of Nodes). Its timeouts are far
// above what any statement needs, so that a connection a proxy holds up does not hang a stack.
func (e *Env) dsnFor(t testing.TB, addr string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(e.DSN)
	if err != nil {
		t.Fatalf("parsing the test DSN: %v", err)
	}
	if addr == "" {
		addr = e.Nodes[int(e.stacks.Add(1)-1)%len(e.Nodes)]
	}
	cfg.Addr = addr
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	return cfg.FormatDSN()
}

// CloseOrFail closes c, failing the test if that fails.
func CloseOrFail(t testing.TB, what string, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("closing %s: %v", what, err)
	}
}

// User is a regular user of a stack, logged in.
type User struct {
	ID  string
	UST string
}

// NewUsers creates n approved regular users named prefix-<i> and logs each in over HTTP.
func (s *Stack) NewUsers(t testing.TB, prefix string, n int) []User {
	t.Helper()
	users := make([]User, n)
	for i := range users {
		username, password := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s-pass-%d", prefix, i)
		u, err := s.API.AdminCreateUser(context.Background(), sso.CreateUserInput{Username: username, Password: &password}, false)
		if err != nil {
			t.Fatalf("AdminCreateUser(%s): %v", username, err)
		}
		res := s.Call(context.Background(), http.MethodPost, "/zato/sso/user/login",
			map[string]any{"username": username, "password": password, "current_app": App})
		ust, _ := res.Body["ust"].(string)
		if !res.OK() || ust == "" {
			t.Fatalf("login of %s: %s, want status ok with a ust", username, res)
		}
		users[i] = User{ID: u.UserID, UST: ust}
	}
	return users
}

// Response is a stack's answer to one request: the HTTP status and decoded body, or the
// transport error that kept it from answering.
type Response struct {
	Status int
	Body   map[string]any
	Err    error
}

// OK reports whether r is a success: HTTP 200 with status ok.
func (r *Response) OK() bool {
	return r.Err == nil && r.Status == http.StatusOK && r.Body["status"] == "ok"
}

// Unavailable reports whether r is the answer to a backend that is down: 503 with E008004.
func (r *Response) Unavailable() bool {
	subStatus, _ := r.Body["sub_status"].([]any)
	return r.Err == nil && r.Status == http.StatusServiceUnavailable && slices.Equal(subStatus, []any{"E008004"})
}

func (r *Response) String() string {
	if r.Err != nil {
		return "no response: " + r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d status %v sub_status %v", r.Status, r.Body["status"], r.Body["sub_status"])
}

// Call sends input as the JSON body of a request to the stack and decodes the answer.
func (s *Stack) Call(ctx context.Context, method, path string, input map[string]any) *Response {
	body, err := json.Marshal(input)
	if err != nil {
		return &Response{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Server.URL+path, bytes.NewReader(body))
	if err != nil {
		return &Response{Err: err}
	}
	httpRes, err := s.Client.Do(req)
	if err != nil {
		return &Response{Err: err}
	}
	defer httpRes.Body.Close()
	res := &Response{Status: httpRes.StatusCode}
	if err := json.NewDecoder(httpRes.Body).Decode(&res.Body); err != nil {
		res.Err = fmt.Errorf("HTTP %d with a body that is not a JSON object: %w", httpRes.StatusCode, err)
	}
	return res
}

// Attr sends one request of u about their attribute name, with extra input.
func (s *Stack) Attr(ctx context.Context, method string, u User, name string, extra map[string]any) *Response {
	input := map[string]any{"ust": u.UST, "current_app": App, "name": name}
	for k, v := range extra {
		input[k] = v
	}
	return s.Call(ctx, method, "/zato/sso/user/attr", input)
}

// SetAttr sets u's attribute name to value.
func (s *Stack) SetAttr(ctx context.Context, u User, name, value string) *Response {
	return s.Attr(ctx, http.MethodPut, u, name, map[string]any{"value": value})
}

// AttrValue is what a read of one string attribute found.
type AttrValue struct {
	Found bool
	Value string
}

// GetAttr reads u's attribute name, whose value must be a string; the value is meaningful when
// the response is OK.
func (s *Stack) GetAttr(ctx context.Context, u User, name string) (AttrValue, *Response) {
	res := s.Attr(ctx, http.MethodGet, u, name, nil)
	if !res.OK() {
		return AttrValue{}, res
	}
	found, _ := res.Body["found"].(bool)
	value, isString := res.Body["value"].(string)
	if found && !isString {
		res.Err = fmt.Errorf("attribute %s: value %v is not a string", name, res.Body["value"])
	}
	return AttrValue{Found: found, Value: value}, res
}

// WaitReady polls /readyz until it answers as ready says (200 when true, 503 E008004 when
// false), failing the test if it does not within a bound.
func (s *Stack) WaitReady(t testing.TB, ready bool) {
	t.Helper()
	const bound = 20 * time.Second
	deadline := time.Now().Add(bound)
	for {
		res := s.Call(context.Background(), http.MethodGet, "/readyz", map[string]any{})
		if (ready && res.OK()) || (!ready && res.Unavailable()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %s after %v, want ready=%v", res, bound, ready)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
