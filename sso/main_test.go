package sso_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

const (
	testApp      = "CRM"
	testAddr     = "192.0.2.10"
	testPassword = "Tr0ub4dor&3-horse"
	signupApp    = "WEB" // the only app allowed to sign up
)

var (
	// testSecretKey is the secret key of testKeys, base64-encoded as ATTRCACHE_SECRET_KEY is.
	testSecretKey = attrcache.GenerateKey()
	// testKeys seals the USTs and the stored secrets of every test.
	testKeys *attrcache.Keyring
	// testStore is the Redis cache in front of this package's own MariaDB database: the user
	// and session store of every API the tests build.
	testStore *cache.Store
	// testAttrs is the attribute store of every API the tests build, over the same backends.
	testAttrs attrcache.AttrStore
	// testSQL is this package's database itself, for tests that look at or tamper with rows.
	testSQL *sql.DB
	// exampleAPI is the API the Example functions use: the test configuration on real time.
	exampleAPI *sso.API
	// testFeed is the change feed of this package's database, which a sequencer fills.
	testFeed attrcache.ChangeFeed
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sso tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	dsn, err := testenv.FreshDatabase("sso")
	if err != nil {
		return 0, err
	}
	prefix, err := testenv.RedisPrefix("sso")
	if err != nil {
		return 0, err
	}
	if testKeys, err = attrcache.ParseSecretKey(testSecretKey); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := persist.Open(ctx, dsn, testKeys)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return 0, err
	}
	rdb, err := testenv.RedisClient()
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	testStore = cache.New(rdb, cache.Options{Prefix: prefix}, db, db)
	defer testStore.Close()
	testAttrs = cache.NewAttrStore(testStore, db)
	if testSQL, err = sql.Open("mysql", dsn); err != nil { // the driver registered by persist
		return 0, err
	}
	defer testSQL.Close()
	// The examples' API reads the change feed, which a sequencer fills as serve's does.
	exampleCfg := testConfig(attrcache.Now)
	testFeed = db
	exampleCfg.Feed = testFeed
	if exampleAPI, err = sso.New(exampleCfg, testKeys, testStore, testStore, testAttrs); err != nil {
		return 0, err
	}
	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		db.RunFeedSequencer(feedCtx, 20*time.Millisecond, 7*24*time.Hour, nil)
	}()
	defer func() {
		stopFeed()
		<-feedDone
	}()
	return m.Run(), nil
}

// testConfig is Zato's defaults with cheap password hashing, two apps (only signupApp may sign up)
// and the given clock.
func testConfig(now func() time.Time) sso.Config {
	cfg := sso.DefaultConfig()
	cfg.Apps = []string{testApp, signupApp}
	cfg.SignupApps = []string{signupApp}
	cfg.Hash = sso.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}
	cfg.Now = now
	return cfg
}

// clock is a time that tests move forward by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an API of a test's own, with its own clock (starting at the real time) and throttle,
// over the shared stores.
type env struct {
	api   *sso.API
	clock *clock
}

// newEnv returns a fresh env; configure, if given, edits the test configuration first.
func newEnv(t *testing.T, configure ...func(*sso.Config)) *env {
	t.Helper()
	return newEnvOver(t, testAttrs, configure...)
}

// newEnvOver returns a fresh env whose API keeps attributes in attrs.
func newEnvOver(t *testing.T, attrs attrcache.AttrStore, configure ...func(*sso.Config)) *env {
	t.Helper()
	c := &clock{now: attrcache.Now()}
	cfg := testConfig(c.Now)
	for _, f := range configure {
		f(&cfg)
	}
	api, err := sso.New(cfg, testKeys, testStore, testStore, attrs)
	if err != nil {
		t.Fatalf("sso.New: %v", err)
	}
	return &env{api: api, clock: c}
}

// user is a user a test made, with the password it was given.
type user struct {
	*attrcache.User
	password string
}

// uniqueName returns a username no other test uses.
func uniqueName(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "u" + hex.EncodeToString(b[:])
}

// createUser makes an approved user with the admin call, after edit changes the input.
func (e *env) createUser(t *testing.T, superUser bool, edit ...func(*sso.CreateUserInput)) user {
	t.Helper()
	password := testPassword
	in := sso.CreateUserInput{Username: uniqueName(t), Password: &password}
	for _, f := range edit {
		f(&in)
	}
	u, err := e.api.AdminCreateUser(context.Background(), in, superUser)
	if err != nil {
		t.Fatalf("AdminCreateUser(%s): %v", in.Username, err)
	}
	return user{User: u, password: *in.Password}
}

// login logs u in and returns the UST. It sends the current code of totpKey, which counts only
// for users who have TOTP on with that key.
func (e *env) login(t *testing.T, u user) string {
	t.Helper()
	res, err := e.api.Login(context.Background(), "cid", sso.LoginInput{
		Username: u.Username, Password: u.password, CurrentApp: testApp, RemoteAddr: testAddr, UserAgent: "test",
		TOTPCode: totpCode(t, e.clock.Now()),
	})
	if err != nil {
		t.Fatalf("Login(%s): %v", u.Username, err)
	}
	return res.UST
}

// superUser makes a super-user and logs them in.
func (e *env) superUser(t *testing.T) (user, string) {
	t.Helper()
	u := e.createUser(t, true)
	return u, e.login(t, u)
}

// regularUser makes a regular, approved user and logs them in.
func (e *env) regularUser(t *testing.T, edit ...func(*sso.CreateUserInput)) (user, string) {
	t.Helper()
	u := e.createUser(t, false, edit...)
	return u, e.login(t, u)
}

// getUser returns the user as a super-user sees them.
func (e *env) getUser(t *testing.T, userID string) *attrcache.User {
	t.Helper()
	_, ust := e.superUser(t)
	view, err := e.api.GetUserByID(context.Background(), "cid", userID, ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("GetUserByID(%s): %v", userID, err)
	}
	return view.User
}

// wantCode fails the test unless err carries the Zato code want ("" for no error).
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := attrcache.CodeOf(err); got != want {
		t.Fatalf("error = %v (code %q), want code %q", err, got, want)
	}
}

// wantKind fails the test unless err is an *attrcache.Error of that kind and code.
func wantKind(t *testing.T, err error, kind attrcache.Kind, code string) *attrcache.Error {
	t.Helper()
	var e *attrcache.Error
	if !errors.As(err, &e) || e.Kind != kind || e.Code != code {
		t.Fatalf("error = %v, want kind %v code %s", err, kind, code)
	}
	return e
}

func ptr[T any](v T) *T { return &v }
