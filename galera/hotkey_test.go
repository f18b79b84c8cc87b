package galera_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/attrcache/attrcache/internal/stacktest"
)

// Eight writers, four on an instance on node 1 and four on one on node 2, set the same five
// attributes of one user: every write conflicts with others on the other node, and Galera's
// certification rolls the losers back. Each write still succeeds, and afterwards both instances,
// Redis and every node agree.
func TestHotKeyWritesFromTwoNodesAllSucceed(t *testing.T) {
	needCluster(t)
	const writersPerInstance, writesPerWriter, names = 4, 150, 5
	stacks := []*stacktest.Stack{
		env.NewStack(t, stacktest.Options{MySQLAddr: env.Nodes[0]}),
		env.NewStack(t, stacktest.Options{MySQLAddr: env.Nodes[1]}),
	}
	u := stacks[0].NewUsers(t, uniqueName("hot"), 1)[0]

	ctx := context.Background()
	var failed atomic.Int64
	var firstFailure sync.Once
	var wg sync.WaitGroup
	for i, s := range stacks {
		for w := range writersPerInstance {
			wg.Go(func() {
				for n := range writesPerWriter {
					name := fmt.Sprintf("hot-%d", n%names)
					res := s.SetAttr(ctx, u, name, fmt.Sprintf("i%d-w%d-%d", i, w, n))
					if !res.OK() {
						failed.Add(1)
						firstFailure.Do(func() { t.Logf("first failed write: %s", res) })
					}
				}
			})
		}
	}
	wg.Wait()
	total := len(stacks) * writersPerInstance * writesPerWriter
	if got := failed.Load(); got != 0 {
		t.Errorf("%d of %d writes failed, want 0", got, total)
	}

	nodes := openNodes(t)
	stored := checkNodesAgree(t, nodes)
	if got := len(ownedBy(stored, u)); got != names {
		t.Errorf("the nodes hold %d attributes of the user, want %d", got, names)
	}
	checkRedisAgrees(t, nodes)
	checkAPIAgrees(t, stacks, u, stored)
}

// unquote decodes the JSON string value, failing t for any other JSON.
func unquote(t *testing.T, value string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		t.Fatalf("stored value %s is not a JSON string: %v", value, err)
	}
	return s
}
