package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// attrKey names one attribute: its owner, its session hash ("" for a user attribute) and name.
type attrKey struct {
	userID  string
	session string
	name    string
}

func (k attrKey) String() string {
	if k.session == "" {
		return k.userID + "/" + k.name
	}
	return k.userID + "/session…/" + k.name
}

// storedAttr is an attribute as a backend holds it: its version and its value as JSON text.
type storedAttr struct {
	version int64
	value   string
}

// mysqlAttrs returns every live attribute row of the test database, read directly.
func mysqlAttrs(ctx context.Context) (map[attrKey]storedAttr, error) {
	rows, err := env.mysql.QueryContext(ctx,
		"SELECT user_id, ust_hash, name, value, version FROM sso_attr WHERE expiration_time > UTC_TIMESTAMP(6)")
	if err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	defer rows.Close()
	attrs := make(map[attrKey]storedAttr)
	for rows.Next() {
		var k attrKey
		var a storedAttr
		if err := rows.Scan(&k.userID, &k.session, &k.name, &a.value, &a.version); err != nil {
			return nil, fmt.Errorf("reading sso_attr: %w", err)
		}
		attrs[k] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sso_attr: %w", err)
	}
	return attrs, nil
}

// cachedAttr is one attribute key of Redis: a live value, or a mark that the attribute is
// absent (the "absent" marker or a deletion's tombstone).
type cachedAttr struct {
	live bool
	storedAttr
}

// redisAttrs returns every attribute key under the test prefix, read directly from Redis and
// decoded by the key scheme and value format that ARCHITECTURE.md and package cache describe:
// `{prefix}{<user_id>}:a:<name>` and `{prefix}{<user_id>}:sa:<session hash>:<name>`, holding
// "v<version>:<metadata JSON>\n<value>", a tombstone "x…" or the absent marker "n".
func redisAttrs(ctx context.Context) (map[attrKey]cachedAttr, error) {
	attrs := make(map[attrKey]cachedAttr)
	iter := env.redis.Scan(ctx, 0, env.prefix+"{*", 1000).Iterator()
	for iter.Next(ctx) {
		redisKey := iter.Val()
		key, isAttr := parseAttrKey(strings.TrimPrefix(redisKey, env.prefix))
		if !isAttr {
			continue
		}
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

// parseAttrKey reads the attribute that a key (without its prefix) names; isAttr is false for
// keys of users and sessions.
func parseAttrKey(key string) (k attrKey, isAttr bool) {
	tag, rest, ok := strings.Cut(strings.TrimPrefix(key, "{"), "}")
	if !ok {
		return attrKey{}, false
	}
	if name, ok := strings.CutPrefix(rest, ":a:"); ok {
		return attrKey{userID: tag, name: name}, true
	}
	if sessionAndName, ok := strings.CutPrefix(rest, ":sa:"); ok {
		session, name, ok := strings.Cut(sessionAndName, ":")
		return attrKey{userID: tag, session: session, name: name}, ok
	}
	return attrKey{}, false
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

// checkCacheMatchesMySQL fails the test unless every attribute key of Redis agrees with MySQL.
// A key whose cache update failed is deleted by the cache's background retry, so the check is
// repeated, within a bound, until Redis has caught up; what still differs then fails the test.
func checkCacheMatchesMySQL(t *testing.T) {
	t.Helper()
	const bound = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), bound+10*time.Second)
	defer cancel()
	deadline := time.Now().Add(bound)
	for {
		diffs, err := cacheDifferences(ctx)
		if err != nil {
			t.Fatalf("comparing Redis with MySQL: %v", err)
		}
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d Redis attribute keys differ from MySQL:\n%s", bound, len(diffs), strings.Join(diffs, "\n"))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// checkLedger fails the test unless MySQL holds, for every attribute of the load, its last
// acknowledged value, or a later value whose write failed (its outcome unknown). It returns how
// many attributes hold such a later value.
func checkLedger(t *testing.T, l *load) (inDoubtCommitted int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	stored, err := mysqlAttrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diffs, inDoubtCommitted := ledgerDifferences(l.workers, stored)
	if len(diffs) > 0 {
		t.Errorf("%d attributes of the load differ in MySQL from what was acknowledged:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	return inDoubtCommitted
}

// ledgerDifferences compares what the workers know of their attributes with stored and
// describes each attribute that holds what no write of it could have left, and counts those
// that hold the value of a write that failed.
func ledgerDifferences(workers []*worker, stored map[attrKey]storedAttr) (diffs []string, inDoubtCommitted int) {
	for _, w := range workers {
		for _, key := range w.keys {
			row, inMySQL := stored[attrKey{userID: w.owner.id, name: key.name}]
			got := attrValue{found: inMySQL}
			if inMySQL {
				if err := json.Unmarshal([]byte(row.value), &got.value); err != nil {
					diffs = append(diffs, fmt.Sprintf("%s: %d bytes that are not a JSON string: %v", key.name, len(row.value), err))
					continue
				}
			}
			switch {
			case !key.readMayReturn(got):
				diffs = append(diffs, fmt.Sprintf("%s: found=%v %q; last acknowledged %q (any: %v), in doubt %q",
					key.name, got.found, got.value, key.acked, key.hasAcked, key.inDoubt))
			case got.found && (!key.hasAcked || got.value != key.acked):
				inDoubtCommitted++
			}
		}
	}
	return diffs, inDoubtCommitted
}

// checkReadsMatchMySQL fails the test unless a read through the stack of every attribute of the
// load finds what MySQL holds.
func checkReadsMatchMySQL(t *testing.T, l *load) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	stored, err := mysqlAttrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range l.workers {
		for _, key := range w.keys {
			got, res := l.stack.getAttr(ctx, w.owner, key.name)
			if !res.ok() {
				t.Errorf("reading %s after recovery: %s, want ok", key.name, res)
				continue
			}
			row, inMySQL := stored[attrKey{userID: w.owner.id, name: key.name}]
			want := attrValue{found: inMySQL}
			if inMySQL {
				_ = json.Unmarshal([]byte(row.value), &want.value) // checkLedger reports a bad value
			}
			if got != want {
				t.Errorf("reading %s after recovery: got found=%v %q, want what MySQL holds: found=%v %q",
					key.name, got.found, got.value, want.found, want.value)
			}
		}
	}
}
