//go:build soak

package soak_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// env is what the soak run shares: its database and key prefix, and direct connections to both
// backends for the checks.
var env struct {
	dsn    string
	prefix string
	keys   *attrcache.Keyring
	mysql  *sql.DB
	redis  *redis.Client
}

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runTests prepares a fresh, migrated database and key prefix and runs the tests.
func runTests(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if env.dsn, err = testenv.FreshDatabase("soak"); err != nil {
		return 0, err
	}
	if env.prefix, err = testenv.RedisPrefix("soak"); err != nil {
		return 0, err
	}
	if env.keys, err = attrcache.ParseSecretKey(attrcache.GenerateKey()); err != nil {
		return 0, err
	}
	if err := migrate(ctx); err != nil {
		return 0, err
	}
	if env.mysql, err = sql.Open("mysql", env.dsn); err != nil {
		return 0, fmt.Errorf("opening the test database: %w", err)
	}
	defer env.mysql.Close()
	// The checker scans one server's keys, so the run uses the single server of RedisURL.
	redisOpts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		return 0, fmt.Errorf("parsing the test Redis URL: %w", err)
	}
	env.redis = redis.NewClient(redisOpts)
	defer env.redis.Close()
	return m.Run(), nil
}

// migrate creates the schema.
func migrate(ctx context.Context) error {
	db, err := persist.Open(ctx, env.dsn, env.keys)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Migrate(ctx)
	return err
}
