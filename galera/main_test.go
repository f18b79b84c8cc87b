// Package galera_test runs attrcache's whole stack on a MariaDB Galera cluster (`make galera`)
// with instances on different nodes: conflicting writes of one hot key, migrations started on two
// nodes at once, and a node killed under load. It runs only when ATTRCACHE_TEST_GALERA_ADDRS
// names the nodes (`make test-galera` sets it); otherwise every test is skipped.
package galera_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache/internal/stacktest"
	"github.com/attrcache/attrcache/internal/testenv"
)

// env is what every test shares; nil when no Galera cluster is configured.
var env *stacktest.Env

func TestMain(m *testing.M) {
	// The driver logs every connection that a killed node breaks.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0)) // fails only for a nil logger
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "galera tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	if len(testenv.GaleraAddrs()) == 0 {
		return m.Run(), nil
	}
	if n := len(testenv.GaleraAddrs()); n < 3 {
		return 0, fmt.Errorf("ATTRCACHE_TEST_GALERA_ADDRS names %d node(s), want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if env, err = stacktest.NewEnv(ctx, "galera"); err != nil {
		return 0, err
	}
	defer env.Close()
	return m.Run(), nil
}

// needCluster skips t when no Galera cluster is configured.
func needCluster(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("no Galera cluster: set ATTRCACHE_TEST_GALERA_ADDRS (`make test-galera` does)")
	}
}

// names counts the names uniqueName gave.
var names atomic.Int64

// uniqueName returns prefix and a number that no other call of this run gave, so that a test run
// again (-count) on the same database creates new users.
func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, names.Add(1)) }
