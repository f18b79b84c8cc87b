//go:build soak

package soak_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/stacktest"
)

// env is what the soak run shares (stacktest.Env). The checker scans one server's keys, so the
// run uses the single Redis server even when the other packages run on a cluster.
var env *stacktest.Env

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if env, err = stacktest.NewEnv(ctx, "soak"); err != nil {
		return 0, err
	}
	defer env.Close()
	return m.Run(), nil
}
