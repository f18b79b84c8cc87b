package galera_test

import (
	"context"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/stacktest"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// A store on a Galera node reads after what the cluster committed before (wsrep_sync_wait's READ
// bit in every session), whatever the server's default: an instance then reads what another, on
// another node, wrote and acknowledged.
func TestStoreReadsAfterTheClusterCommits(t *testing.T) {
	needCluster(t)
	keys, err := attrcache.ParseSecretKey(attrcache.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range env.Nodes {
		db := openAt(t, env.DSN, addr, keys)
		var syncWait int64
		if err := db.SQL().QueryRowContext(context.Background(), "SELECT @@session.wsrep_sync_wait").Scan(&syncWait); err != nil {
			t.Fatal(err)
		}
		if syncWait&1 == 0 {
			t.Errorf("node %s: a store's session has wsrep_sync_wait %d, want the READ bit (1) set", addr, syncWait)
		}
	}
}

// openAt opens the store of dsn on the node at addr, waiting for the node to see the database
// that another node created; t.Cleanup closes it.
func openAt(t *testing.T, dsn, addr string, keys *attrcache.Keyring) *persist.DB {
	t.Helper()
	nodeDSN, err := testenv.DSNAt(dsn, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		db, err := persist.Open(ctx, nodeDSN, keys)
		if err == nil {
			t.Cleanup(func() { stacktest.CloseOrFail(t, "store on "+addr, db) })
			return db
		}
		if ctx.Err() != nil {
			t.Fatalf("persist.Open on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}
