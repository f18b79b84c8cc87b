// Package faults_test runs attrcache's whole stack — MySQL store with group commit, Redis cache,
// Go API and HTTP server — with a fault proxy (internal/faultproxy) between it and each backend,
// puts a mixed read/write load on it over HTTP while a backend fails, and then checks that
// nothing acknowledged was lost and that Redis holds nothing MySQL lacks.
package faults_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/internal/stacktest"
)

// env is what every scenario shares (stacktest.Env). The proxies forward to one server, so the
// tests use the single Redis server even when the other packages run on a cluster.
var env *stacktest.Env

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

func runTests(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if env, err = stacktest.NewEnv(ctx, "faults"); err != nil {
		return 0, err
	}
	defer env.Close()
	return m.Run(), nil
}

// discardLogger drops go-redis's messages.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
