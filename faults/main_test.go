// Package faults_test runs attrcache's whole stack — MySQL store with group commit, Redis cache,
// Go API and HTTP server — with a fault proxy (internal/faultproxy) between it and each backend,
// puts a mixed read/write load on it over HTTP while a backend fails, and then checks that
// nothing acknowledged was lost and that Redis holds nothing MySQL lacks.
package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// env is what every scenario shares: the test database and key prefix, and direct connections
// to both backends (never through a proxy) for the checks.
var env struct {
	dsn       string
	prefix    string
	keys      *attrcache.Keyring
	mysql     *sql.DB
	redis     *redis.Client
	redisAddr string
}

func TestMain(m *testing.M) {
	// Both clients log every broken connection, thousands under the faults these tests inject.
	redis.SetLogger(discardLogger{})
	_ = mysql.SetLogger(log.New(io.Discard, "", 0)) // fails only for a nil logger
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runTests prepares a fresh, migrated database and key prefix and runs the tests.
func runTests(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if env.dsn, err = testenv.FreshDatabase("faults"); err != nil {
		return 0, err
	}
	if env.prefix, err = testenv.RedisPrefix("faults"); err != nil {
		return 0, err
	}
	if env.keys, err = attrcache.ParseSecretKey(attrcache.GenerateKey()); err != nil {
		return 0, err
	}
	if err := migrate(ctx); err != nil {
		return 0, err
	}
	if env.mysql, err = sql.Open("mysql", env.dsn); err != nil {
		return 0, err
	}
	defer env.mysql.Close()
	// The proxy forwards to one server, so the tests use the single server of RedisURL even when
	// the other packages run on a cluster.
	redisOpts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		return 0, err
	}
	env.redisAddr = redisOpts.Addr
	env.redis = redis.NewClient(redisOpts)
	defer env.redis.Close()
	return m.Run(), nil
}

// discardLogger drops go-redis's messages.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// migrate creates the schema, directly rather than through a proxy.
func migrate(ctx context.Context) error {
	db, err := persist.Open(ctx, env.dsn, env.keys)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Migrate(ctx)
	return err
}
