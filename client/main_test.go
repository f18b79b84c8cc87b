package client_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/client"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// The test server's apps, and the failed logins a username may make before the next is refused.
const (
	app           = "CRM"
	throttleLimit = 3
)

var (
	// handler is the whole stack (persist, cache, sso, httpapi) over the test MariaDB and Redis;
	// serverURL serves it.
	handler   http.Handler
	serverURL string
	api       *sso.API

	// The super-user the examples and tests log in as.
	adminUsername = "admin"
	adminPassword = "admin-secret-pass"
	admin         *client.Session

	userSeq atomic.Int64
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runTests serves the whole stack on the test MariaDB and Redis, creates the super-user and runs
// the tests and examples.
func runTests(m *testing.M) (int, error) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := testenv.FreshDatabase("client")
	if err != nil {
		return 0, err
	}
	prefix, err := testenv.RedisPrefix("client")
	if err != nil {
		return 0, err
	}
	keys, err := attrcache.ParseSecretKey(attrcache.GenerateKey())
	if err != nil {
		return 0, err
	}
	if err := persist.EnsureDatabase(ctx, dsn); err != nil {
		return 0, err
	}
	db, err := persist.Open(ctx, dsn, keys)
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
	store := cache.New(rdb, cache.Options{Prefix: prefix}, db, db)
	defer store.Close()

	cfg := sso.DefaultConfig()
	cfg.Apps = []string{app}
	cfg.SignupApps = []string{app}
	cfg.Hash = sso.HashParams{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}
	cfg.Throttle = sso.ThrottleConfig{PerUsername: throttleLimit, Window: time.Hour}
	api, err = sso.New(cfg, keys, store, store, cache.NewAttrStore(store, db))
	if err != nil {
		return 0, err
	}
	handler = httpapi.NewServer(api, httpapi.Options{})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	serverURL = srv.URL

	if _, err := api.AdminCreateUser(ctx, sso.CreateUserInput{Username: adminUsername, Password: &adminPassword}, true); err != nil {
		return 0, fmt.Errorf("creating the super-user: %w", err)
	}
	c, err := client.New(serverURL, app)
	if err != nil {
		return 0, err
	}
	if admin, err = c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword}); err != nil {
		return 0, fmt.Errorf("logging the super-user in: %w", err)
	}
	return m.Run(), nil
}

// newClient returns a client of the test server, failing the test on error.
func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(serverURL, app, opts...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// testUser is an approved regular user, created and logged in over the client.
type testUser struct {
	id, username, password string
	session                *client.Session
}

// newUser creates an approved regular user over the client, logs them in, and deletes them when
// the test ends.
func newUser(t *testing.T) testUser {
	t.Helper()
	ctx := t.Context()
	u := testUser{username: uniqueName("user")}
	u.password = "pass-" + u.username
	created, err := admin.CreateUser(ctx, client.NewUser{Username: u.username, Password: &u.password, AutoApprove: true})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", u.username, err)
	}
	u.id = created.UserID
	t.Cleanup(func() { _ = admin.DeleteUser(context.Background(), u.id) })
	if u.session, err = newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password}); err != nil {
		t.Fatalf("Login(%s): %v", u.username, err)
	}
	return u
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
}
