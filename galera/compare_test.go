package galera_test

import (
	"context"
	"database/sql"
	"maps"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/consistency"
	"github.com/attrcache/attrcache/internal/stacktest"
)

// openNodes opens a direct connection to the test database on every node; t.Cleanup closes them.
func openNodes(t *testing.T) []*sql.DB {
	t.Helper()
	dbs := make([]*sql.DB, len(env.Nodes))
	for i, addr := range env.Nodes {
		db, err := env.OpenNode(addr)
		if err != nil {
			t.Fatalf("opening node %s: %v", addr, err)
		}
		t.Cleanup(func() { stacktest.CloseOrFail(t, "node "+addr, db) })
		dbs[i] = db
	}
	return dbs
}

// checkNodesAgree fails t unless every node holds the same attribute rows, and returns them. A
// read waits for what the cluster committed before it (wsrep_sync_wait), so no polling is needed.
func checkNodesAgree(t *testing.T, nodes []*sql.DB) map[consistency.Key]consistency.Row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var first map[consistency.Key]consistency.Row
	for i, db := range nodes {
		rows, err := consistency.MySQL(ctx, db)
		if err != nil {
			t.Fatalf("node %s: %v", env.Nodes[i], err)
		}
		if i == 0 {
			first = rows
			continue
		}
		if !maps.Equal(rows, first) {
			t.Errorf("node %s holds %d attribute rows that differ from node %s's %d", env.Nodes[i], len(rows), env.Nodes[0], len(first))
		}
	}
	return first
}

// checkRedisAgrees fails t unless every attribute Redis caches agrees with each node.
func checkRedisAgrees(t *testing.T, nodes []*sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, db := range nodes {
		diffs, _, err := consistency.Differences(ctx, db, env.Redis, env.Prefix)
		if err != nil {
			t.Fatalf("comparing Redis with node %s: %v", env.Nodes[i], err)
		}
		for _, d := range diffs {
			t.Errorf("Redis and node %s: %s", env.Nodes[i], d)
		}
	}
}

// checkAPIAgrees fails t unless each stack reads every attribute of stored owned by u as stored
// holds it.
func checkAPIAgrees(t *testing.T, stacks []*stacktest.Stack, u stacktest.User, stored map[consistency.Key]consistency.Row) {
	t.Helper()
	ctx := context.Background()
	for key, row := range ownedBy(stored, u) {
		for i, s := range stacks {
			got, res := s.GetAttr(ctx, u, key.Name)
			want := stacktest.AttrValue{Found: true, Value: unquote(t, row.Value)}
			if !res.OK() || got != want {
				t.Errorf("instance %d reads %s as %+v (%s), want %+v", i, key.Name, got, res, want)
			}
		}
	}
}

// ownedBy returns the user attributes of u among stored.
func ownedBy(stored map[consistency.Key]consistency.Row, u stacktest.User) map[consistency.Key]consistency.Row {
	owned := make(map[consistency.Key]consistency.Row)
	for key, row := range stored {
		if key.UserID == u.ID && key.Session == "" {
			owned[key] = row
		}
	}
	return owned
}
