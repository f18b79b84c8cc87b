package galera_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// Two instances on different nodes start together on a fresh database: a named lock is each
// node's own, the migration lock is the cluster's, so each migration is applied once, by one of
// them, and neither fails.
func TestMigrationsFromTwoNodesApplyOnce(t *testing.T) {
	needCluster(t)
	const rounds = 3
	keys, err := attrcache.ParseSecretKey(attrcache.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for round := range rounds {
		dsn, err := testenv.FreshDatabase(fmt.Sprintf("galera_migrate_%d", round))
		if err != nil {
			t.Fatal(err)
		}
		dbs := make([]*persist.DB, 2)
		for i := range dbs {
			dbs[i] = openAt(t, dsn, env.Nodes[i], keys)
		}
		applied := make([][]string, len(dbs))
		errs := make([]error, len(dbs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range dbs {
			wg.Go(func() {
				<-start
				applied[i], errs[i] = db.Migrate(context.Background())
			})
		}
		close(start)
		wg.Wait()

		var all []string
		for i := range dbs {
			if errs[i] != nil {
				t.Errorf("round %d: Migrate on node %s: %v", round, env.Nodes[i], errs[i])
			}
			all = append(all, applied[i]...)
		}
		slices.Sort(all)
		if round == 0 {
			want = recorded(t, dbs[0])
		}
		if len(want) == 0 || !slices.Equal(all, want) {
			t.Errorf("round %d: the two instances applied %v together, want each of %v once", round, all, want)
		}
		for i, db := range dbs {
			if got := recorded(t, db); !slices.Equal(got, want) {
				t.Errorf("round %d: node %s records %v, want %v", round, env.Nodes[i], got, want)
			}
		}
	}
}

// recorded returns the versions schema_migrations holds, in order.
func recorded(t *testing.T, db *persist.DB) []string {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}
