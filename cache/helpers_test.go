package cache

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
)

// countingStore wraps the inner stores and counts the calls that reach them.
type countingStore struct {
	users    attrcache.UserStore
	sessions attrcache.SessionStore
	attrs    attrcache.AttrStore

	// before, when set (before the store is shared between goroutines), runs at the start of
	// every call with the method's name.
	before func(method string)

	mu    sync.Mutex
	calls map[string]int
}

var (
	_ attrcache.UserStore    = (*countingStore)(nil)
	_ attrcache.SessionStore = (*countingStore)(nil)
	_ attrcache.AttrStore    = (*countingStore)(nil)
)

func newCountingStore() *countingStore {
	return &countingStore{users: testDB, sessions: testDB, attrs: testDB, calls: make(map[string]int)}
}

func (c *countingStore) count(method string) {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
	if c.before != nil {
		c.before(method)
	}
}

// counts returns the calls made since the last reset, by method.
func (c *countingStore) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for method, n := range c.calls {
		out[method] = n
	}
	return out
}

func (c *countingStore) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.calls)
}

func (c *countingStore) CreateUser(ctx context.Context, u *attrcache.User) error {
	c.count("CreateUser")
	return c.users.CreateUser(ctx, u)
}

func (c *countingStore) UserByID(ctx context.Context, userID string) (*attrcache.User, error) {
	c.count("UserByID")
	return c.users.UserByID(ctx, userID)
}

func (c *countingStore) UserByUsername(ctx context.Context, username string) (*attrcache.User, error) {
	c.count("UserByUsername")
	return c.users.UserByUsername(ctx, username)
}

func (c *countingStore) UserBySignUpToken(ctx context.Context, token string) (*attrcache.User, error) {
	c.count("UserBySignUpToken")
	return c.users.UserBySignUpToken(ctx, token)
}

func (c *countingStore) UpdateUser(ctx context.Context, userID string, upd attrcache.UserUpdate) (*attrcache.User, error) {
	c.count("UpdateUser")
	return c.users.UpdateUser(ctx, userID, upd)
}

func (c *countingStore) DeleteUser(ctx context.Context, userID string) ([]attrcache.AttrKey, error) {
	c.count("DeleteUser")
	return c.users.DeleteUser(ctx, userID)
}

func (c *countingStore) SearchUsers(ctx context.Context, q attrcache.UserQuery) ([]*attrcache.User, int, error) {
	c.count("SearchUsers")
	return c.users.SearchUsers(ctx, q)
}

func (c *countingStore) CreateSession(ctx context.Context, s *attrcache.Session) error {
	c.count("CreateSession")
	return c.sessions.CreateSession(ctx, s)
}

func (c *countingStore) Session(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, error) {
	c.count("Session")
	return c.sessions.Session(ctx, userID, hash)
}

func (c *countingStore) SessionWithPrincipal(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error) {
	c.count("SessionWithPrincipal")
	return c.sessions.SessionWithPrincipal(ctx, userID, hash)
}

func (c *countingStore) RenewSession(ctx context.Context, userID string, hash attrcache.SessionHash, expiresAt time.Time, change attrcache.SessionStateChange) (*attrcache.Session, error) {
	c.count("RenewSession")
	return c.sessions.RenewSession(ctx, userID, hash, expiresAt, change)
}

func (c *countingStore) DeleteSession(ctx context.Context, userID string, hash attrcache.SessionHash) error {
	c.count("DeleteSession")
	return c.sessions.DeleteSession(ctx, userID, hash)
}

func (c *countingStore) UserSessions(ctx context.Context, userID string, now time.Time) ([]*attrcache.Session, error) {
	c.count("UserSessions")
	return c.sessions.UserSessions(ctx, userID, now)
}

func (c *countingStore) SetAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	c.count("SetAttrs")
	return c.attrs.SetAttrs(ctx, scope, items, now)
}

func (c *countingStore) CreateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	c.count("CreateAttrs")
	return c.attrs.CreateAttrs(ctx, scope, items, now)
}

func (c *countingStore) UpdateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	c.count("UpdateAttrs")
	return c.attrs.UpdateAttrs(ctx, scope, items, now)
}

func (c *countingStore) Attrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (map[string]*attrcache.Attr, error) {
	c.count("Attrs")
	return c.attrs.Attrs(ctx, scope, names, now)
}

func (c *countingStore) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	c.count("AttrNames")
	return c.attrs.AttrNames(ctx, scope, now)
}

func (c *countingStore) DeleteAttrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (int64, error) {
	c.count("DeleteAttrs")
	return c.attrs.DeleteAttrs(ctx, scope, names, now)
}

func (c *countingStore) WriteAttrsChecked(ctx context.Context, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, atomic bool, now time.Time) ([]attrcache.AttrOutcome, error) {
	c.count("WriteAttrsChecked")
	return c.attrs.WriteAttrsChecked(ctx, scope, op, items, atomic, now)
}

// errInjected is the failure faultHook makes Redis commands return.
var errInjected = errors.New("injected redis failure")

// faultHook counts the commands a client sends, by lower-case name, and fails them on demand.
type faultHook struct {
	mu       sync.Mutex
	commands map[string]int
	failAll  bool
	failing  map[string]bool // command names that fail when failAll is false
}

func newFaultHook() *faultHook { return &faultHook{commands: make(map[string]int)} }

// setFailing makes every later command fail (true) or go through (false).
func (h *faultHook) setFailing(failing bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failAll, h.failing = failing, nil
}

// failOnly makes the commands called names fail, and no other.
func (h *faultHook) failOnly(names ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failAll, h.failing = false, make(map[string]bool)
	for _, name := range names {
		h.failing[name] = true
	}
}

// sent returns how many commands called name were sent since the last reset.
func (h *faultHook) sent(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.commands[name]
}

// sentAll returns the commands sent since the last reset, by name.
func (h *faultHook) sentAll() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.commands)
}

func (h *faultHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.commands)
}

// record counts cmds and returns errInjected, set on every command, when one of them must fail.
func (h *faultHook) record(cmds ...redis.Cmder) error {
	h.mu.Lock()
	fail := h.failAll
	for _, cmd := range cmds {
		name := strings.ToLower(cmd.Name())
		h.commands[name]++
		fail = fail || h.failing[name]
	}
	h.mu.Unlock()
	if !fail {
		return nil
	}
	for _, cmd := range cmds {
		cmd.SetErr(errInjected)
	}
	return errInjected
}

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.record(cmd); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.record(cmds...); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*faultHook)(nil)

// newRedis returns a client of the test Redis (server or cluster) with hooks added, closed at
// the end of the test.
func newRedis(t *testing.T, hooks ...redis.Hook) redis.UniversalClient {
	t.Helper()
	rdb, err := testenv.RedisClient()
	if err != nil {
		t.Fatalf("redis client: %v", err)
	}
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// unreachableRedis returns a client of an address where nothing listens.
func unreachableRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:          "127.0.0.1:1",
		MaxRetries:    -1,
		DialTimeout:   time.Second,
		DialerRetries: 1,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newTestStore returns a Store on rdb in front of a counting wrapper of the MySQL store, closed
// at the end of the test.
func newTestStore(t *testing.T, rdb redis.UniversalClient) (*Store, *countingStore) {
	t.Helper()
	return newTestStoreWith(t, rdb, Options{})
}

// newTestStoreWith is newTestStore with opts, under the package's prefix.
func newTestStoreWith(t *testing.T, rdb redis.UniversalClient, opts Options) (*Store, *countingStore) {
	t.Helper()
	inner := newCountingStore()
	opts.Prefix = testPrefix
	s := New(rdb, opts, inner, inner)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, inner
}

// newUser creates an approved, active user in MySQL only (Redis knows nothing of them).
func newUser(t *testing.T) *attrcache.User {
	t.Helper()
	now := attrcache.Now()
	id := attrcache.NewUserID()
	u := &attrcache.User{
		UserID:                id,
		Username:              "user-" + id,
		IsActive:              true,
		CreationCtx:           "{}",
		ApprovalStatus:        attrcache.ApprovalApproved,
		ApprovalStatusModBy:   attrcache.ModByAuto,
		ApprovalStatusModTime: now,
		PasswordHash:          "not-a-real-hash",
		PasswordIsSet:         true,
		PasswordLastSet:       now,
		PasswordExpiry:        now.Add(365 * 24 * time.Hour),
		SignUpStatus:          attrcache.SignUpFinal,
		SignUpTime:            now,
	}
	if err := testDB.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("creating a user: %v", err)
	}
	return u
}

// newSession creates a session of userID lasting lifetime in MySQL only.
func newSession(t *testing.T, userID string, lifetime time.Duration) *attrcache.Session {
	t.Helper()
	now := attrcache.Now()
	sess := &attrcache.Session{
		Hash:           attrcache.HashSessionID(attrcache.NewSessionID()),
		UserID:         userID,
		CreationTime:   now,
		ExpirationTime: now.Add(lifetime),
		RemoteAddr:     "127.0.0.1",
		UserAgent:      "cache-test",
		AuthType:       "default",
		StateChanges:   []attrcache.SessionStateChange{},
	}
	if err := testDB.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("creating a session: %v", err)
	}
	return sess
}

// rawValue returns what Redis holds at key, and whether the key exists.
func rawValue(t *testing.T, rdb redis.UniversalClient, key string) (string, bool) {
	t.Helper()
	v, err := rdb.Get(context.Background(), key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v, true
}

// expiresAt returns when key expires, as PEXPIRETIME says (read as a number: a far-future time
// in milliseconds overflows a time.Duration).
func expiresAt(t *testing.T, rdb redis.UniversalClient, key string) time.Time {
	t.Helper()
	ms, err := rdb.Do(context.Background(), "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatalf("PEXPIRETIME %s: %v", key, err)
	}
	if ms < 0 {
		t.Fatalf("PEXPIRETIME %s = %d: no such key, or no expiry", key, ms)
	}
	return time.UnixMilli(ms)
}

// cachedPrincipal returns the principal Redis holds for userID; it fails the test if there is
// none.
func cachedPrincipal(t *testing.T, s *Store, userID string) *attrcache.Principal {
	t.Helper()
	raw, ok := rawValue(t, s.rdb, s.keys.principal(userID))
	if !ok {
		t.Fatalf("no principal cached for %s", userID)
	}
	e, err := parseEntry(raw)
	if err != nil || e.state != entryLive {
		t.Fatalf("cached principal %q: state %v, err %v", raw, e.state, err)
	}
	p, err := decodePrincipal(e)
	if err != nil {
		t.Fatalf("decoding the cached principal: %v", err)
	}
	return p
}

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayAll applies every pending change of the test database to s's Redis at once.
func relayAll(t *testing.T, s *Store) {
	t.Helper()
	r := NewRelay(s, testDB, RelayOptions{Grace: time.Nanosecond})
	for {
		n, err := r.RelayOnce(context.Background())
		if err != nil {
			t.Fatalf("RelayOnce: %v", err)
		}
		if n == 0 {
			return
		}
	}
}
