// Package consistency compares what Redis caches of attributes with what MySQL holds, for the
// tests that break the service on purpose (faults) or run it for long (soak). It reads both
// stores directly, MySQL's sso_attr table and the Redis keys under a prefix, which package cache
// names and decodes.
package consistency

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/cache"
)

// Key names one attribute: its owner, its session hash ("" for a user attribute) and name.
type Key struct {
	UserID  string
	Session string
	Name    string
}

func (k Key) String() string {
	if k.Session == "" {
		return k.UserID + "/" + k.Name
	}
	return k.UserID + "/session…/" + k.Name
}

// Row is an attribute as a store holds it: its version and its value as JSON text.
type Row struct {
	Version int64
	Value   string
}

// Cached is one attribute key of Redis: a live value, a floor (a relay's mark that MySQL holds
// that version or a newer one), or a mark that the attribute is absent (the "absent" marker or a
// deletion's tombstone).
type Cached struct {
	Live bool
	// Floor is set for a floor (never served; Row.Version is its version).
	Floor bool
	Row
}

// MySQL returns every live attribute row, read directly from sso_attr.
func MySQL(ctx context.Context, db *sql.DB) (map[Key]Row, error) {
	rows, err := db.QueryContext(ctx,
		"SELECT user_id, ust_hash, name, value, version FROM sso_attr WHERE expiration_time > UTC_TIMESTAMP(6)")
	if err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	defer rows.Close()
	attrs := make(map[Key]Row)
	for rows.Next() {
		var k Key
		var r Row
		if err := rows.Scan(&k.UserID, &k.Session, &k.Name, &r.Value, &r.Version); err != nil {
			return nil, fmt.Errorf("reading sso_attr: %w", err)
		}
		attrs[k] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	return attrs, nil
}

// Redis returns every attribute key under prefix, as the cache's key scheme and value format
// (cache.ParseAttrKey, cache.DecodeAttrEntry) read them.
func Redis(ctx context.Context, rdb *redis.Client, prefix string) (map[Key]Cached, error) {
	attrs := make(map[Key]Cached)
	iter := rdb.Scan(ctx, 0, prefix+"{*", 1000).Iterator()
	for iter.Next(ctx) {
		redisKey := iter.Val()
		attr, isAttr := cache.ParseAttrKey(prefix, redisKey)
		if !isAttr {
			continue
		}
		key := Key{UserID: attr.Scope.UserID, Session: string(attr.Scope.Session), Name: attr.Name}
		raw, err := rdb.Get(ctx, redisKey).Result()
		if err != nil {
			continue // expired or deleted since the scan saw it
		}
		entry, err := cache.DecodeAttrEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("redis key of %s: %w", key, err)
		}
		attrs[key] = Cached{
			Live:  entry.State == cache.EntryLive,
			Floor: entry.State == cache.EntryFloor,
			Row:   Row{Version: entry.Version, Value: entry.Value},
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scanning redis: %w", err)
	}
	return attrs, nil
}

// Differences compares every attribute key of Redis under prefix with MySQL and describes, in
// order, each that disagrees: a live value MySQL lacks or holds otherwise, or an absent mark over
// a live row. It also returns how many attribute keys Redis holds.
func Differences(ctx context.Context, db *sql.DB, rdb *redis.Client, prefix string) (diffs []string, cachedKeys int, err error) {
	cached, err := Redis(ctx, rdb, prefix)
	if err != nil {
		return nil, 0, err
	}
	stored, err := MySQL(ctx, db)
	if err != nil {
		return nil, 0, err
	}
	for key, c := range cached {
		row, inMySQL := stored[key]
		switch {
		case c.Floor:
			if inMySQL && c.Version > row.Version {
				diffs = append(diffs, fmt.Sprintf("%s: Redis holds a floor of version %d, above MySQL's %d", key, c.Version, row.Version))
			}
		case c.Live && !inMySQL:
			diffs = append(diffs, fmt.Sprintf("%s: Redis holds version %d, MySQL has no such attribute", key, c.Version))
		case c.Live && c.Row != row:
			diffs = append(diffs, fmt.Sprintf("%s: Redis holds version %d (%d bytes), MySQL version %d (%d bytes)",
				key, c.Version, len(c.Value), row.Version, len(row.Value)))
		case !c.Live && inMySQL:
			diffs = append(diffs, fmt.Sprintf("%s: Redis marks it absent, MySQL holds version %d", key, row.Version))
		}
	}
	slices.Sort(diffs)
	return diffs, len(cached), nil
}
