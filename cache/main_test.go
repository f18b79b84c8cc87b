package cache

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// The package's tests share one key prefix and one database of their own; every test works on
// users of its own, so tests do not see each other's keys or rows.
var (
	testPrefix string
	testDB     *persist.DB
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cache tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if testPrefix, err = testenv.RedisPrefix("cache"); err != nil {
		return 0, err
	}
	dsn, err := testenv.FreshDatabase("cache")
	if err != nil {
		return 0, err
	}
	keys, err := attrcache.ParseSecretKey(attrcache.GenerateKey())
	if err != nil {
		return 0, err
	}
	if testDB, err = persist.Open(ctx, dsn, keys); err != nil {
		return 0, err
	}
	defer testDB.Close()
	if _, err := testDB.Migrate(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}
