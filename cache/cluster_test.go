package cache

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
)

// TestClusterKeepsEachUserOnOneMaster checks, on a Redis Cluster, that every key the cache
// writes for a user (principal, session, attributes of both scopes, absent markers) lands on
// one master, so that one user's MGETs, pipelines and scripts never cross slots, and that
// different users spread over the masters.
func TestClusterKeepsEachUserOnOneMaster(t *testing.T) {
	if len(testenv.RedisClusterAddrs()) == 0 {
		t.Skip("needs a Redis Cluster: set ATTRCACHE_TEST_REDIS_ADDRS (`make test-cluster` does)")
	}
	ctx := context.Background()
	rdb := newRedis(t)
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("testenv.RedisClient() is a %T with ATTRCACHE_TEST_REDIS_ADDRS set, want a *redis.ClusterClient", rdb)
	}
	a, inner := newAttrTestStore(t, cluster)

	const users = 20
	wantKeys := make(map[string][]string, users) // user_id → the keys the cache must hold
	for range users {
		sessionScope := newScope(t, a, inner, true)
		userScope := attrcache.AttrScope{UserID: sessionScope.UserID}
		for _, scope := range []attrcache.AttrScope{sessionScope, userScope} {
			if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("colour", "red"), item("size", "L")}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs: %v", err)
			}
		}
		cachedAttrs(t, a, userScope, "colour", "size", "missing") // leaves an absent marker for "missing"
		attrKeys := a.s.keys.attrs(sessionScope, []string{"colour", "size"})
		attrKeys = append(attrKeys, a.s.keys.attrs(userScope, []string{"colour", "size", "missing"})...)
		wantKeys[userScope.UserID] = append([]string{
			a.s.keys.principal(userScope.UserID),
			a.s.keys.session(userScope.UserID, sessionScope.Session),
		}, attrKeys...)
	}

	mastersOfKey := keysByMaster(t, cluster, testPrefix)
	usedMasters := make(map[string]bool)
	for userID, keys := range wantKeys {
		masters := make(map[string]bool)
		for _, key := range keys {
			master := mastersOfKey[key]
			if master == "" {
				t.Errorf("no master holds %s", key)
				continue
			}
			masters[master] = true
			usedMasters[master] = true
		}
		if len(masters) != 1 {
			t.Errorf("the keys of user %s are on the masters %v, want all on one", userID, masters)
		}
	}
	if len(usedMasters) < 2 {
		t.Errorf("%d users were all cached on the masters %v, want them spread over more than one", users, usedMasters)
	}
}

// keysByMaster returns, for every key under prefix in the cluster, the address of the master
// that holds it.
func keysByMaster(t *testing.T, cluster *redis.ClusterClient, prefix string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	masterOf := make(map[string]string)
	err := cluster.ForEachMaster(context.Background(), func(ctx context.Context, master *redis.Client) error {
		iter := master.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			masterOf[iter.Val()] = master.Options().Addr
			mu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatalf("scanning the masters: %v", err)
	}
	return masterOf
}
