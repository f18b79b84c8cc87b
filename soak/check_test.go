//go:build soak

package soak_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The comparison of Redis with MySQL is that of faults/check_test.go. It lives in a test file
// there, which no other package can import, hence this copy.

// attrKey names one user attribute: its owner and name.
type attrKey struct {
	userID string
	name   string
}

func (k attrKey) String() string { return k.userID + "/" + k.name }

// storedAttr is an attribute as a backend holds it: its version and its value as JSON text.
type storedAttr struct {
	version int64
	value   string
}

// mysqlAttrs returns every live user attribute row of the soak database, read directly.
func mysqlAttrs(ctx context.Context) (map[attrKey]storedAttr, error) {
	rows, err := env.mysql.QueryContext(ctx,
		"SELECT user_id, name, value, version FROM sso_attr WHERE ust_hash = '' AND expiration_time > UTC_TIMESTAMP(6)")
	if err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	defer rows.Close()
	attrs := make(map[attrKey]storedAttr)
	for rows.Next() {
		var k attrKey
		var a storedAttr
		if err := rows.Scan(&k.userID, &k.name, &a.value, &a.version); err != nil {
			return nil, fmt.Errorf("reading sso_attr: %w", err)
		}
		attrs[k] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	return attrs, nil
}

// countRows returns how many attribute rows of the soak database match where.
func countRows(ctx context.Context, where string) (int, error) {
	var n int
	if err := env.mysql.QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_attr WHERE "+where).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting sso_attr rows: %w", err)
	}
	return n, nil
}

// cachedAttr is one attribute key of Redis: a live value, or a mark that the attribute is
// absent (the "absent" marker or a deletion's tombstone).
type cachedAttr struct {
	live bool
	storedAttr
}

// redisAttrs returns every user attribute key under the soak prefix, `{prefix}{<user_id>}:a:<name>`
// holding "v<version>:<metadata JSON>\n<value>", a tombstone "x…" or the absent marker "n".
func redisAttrs(ctx context.Context) (map[attrKey]cachedAttr, error) {
	attrs := make(map[attrKey]cachedAttr)
	iter := env.redis.Scan(ctx, 0, env.prefix+"{*}:a:*", 1000).Iterator()
	for iter.Next(ctx) {
		redisKey := iter.Val()
		userID, name, ok := strings.Cut(strings.TrimPrefix(redisKey, env.prefix+"{"), "}:a:")
		if !ok {
			continue
		}
		key := attrKey{userID: userID, name: name}
		raw, err := env.redis.Get(ctx, redisKey).Result()
		if err != nil {
			continue // expired or deleted since the scan saw it
		}
		cached, err := parseCachedAttr(raw)
		if err != nil {
			return nil, fmt.Errorf("redis key of %s: %w", key, err)
		}
		attrs[key] = cached
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scanning redis: %w", err)
	}
	return attrs, nil
}

func parseCachedAttr(raw string) (cachedAttr, error) {
	if raw == "n" || strings.HasPrefix(raw, "x") {
		return cachedAttr{}, nil
	}
	errFormat := errors.New("a value of an unknown format")
	rest, isLive := strings.CutPrefix(raw, "v")
	versionAndMeta, value, hasValue := strings.Cut(rest, "\n")
	version, _, hasMeta := strings.Cut(versionAndMeta, ":")
	if !isLive || !hasValue || !hasMeta {
		return cachedAttr{}, errFormat
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return cachedAttr{}, errFormat
	}
	return cachedAttr{live: true, storedAttr: storedAttr{version: v, value: value}}, nil
}

// cacheDifferences compares every attribute key of Redis with MySQL and describes each that
// disagrees: a live value MySQL lacks or holds otherwise, or an absent mark over a live row.
func cacheDifferences(ctx context.Context) ([]string, error) {
	cached, err := redisAttrs(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := mysqlAttrs(ctx)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for key, c := range cached {
		row, inMySQL := stored[key]
		switch {
		case c.live && !inMySQL:
			diffs = append(diffs, fmt.Sprintf("%s: Redis holds version %d, MySQL has no such attribute", key, c.version))
		case c.live && c.storedAttr != row:
			diffs = append(diffs, fmt.Sprintf("%s: Redis holds version %d (%d bytes), MySQL version %d (%d bytes)",
				key, c.version, len(c.value), row.version, len(row.value)))
		case !c.live && inMySQL:
			diffs = append(diffs, fmt.Sprintf("%s: Redis marks it absent, MySQL holds version %d", key, row.version))
		}
	}
	slices.Sort(diffs)
	return diffs, nil
}
