package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/consistency"
)

// attrKey and storedAttr are the comparison's own (internal/consistency), shared with soak/.
type (
	attrKey    = consistency.Key
	storedAttr = consistency.Row
)

// mysqlAttrs returns every live attribute row of the test database, read directly.
func mysqlAttrs(ctx context.Context) (map[attrKey]storedAttr, error) {
	return consistency.MySQL(ctx, env.MySQL)
}

// cacheDifferences compares every attribute key of Redis with MySQL (consistency.Differences).
func cacheDifferences(ctx context.Context) ([]string, error) {
	diffs, _, err := consistency.Differences(ctx, env.MySQL, env.Redis, env.Prefix)
	return diffs, err
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
			row, inMySQL := stored[attrKey{UserID: w.owner.ID, Name: key.name}]
			got := attrValue{Found: inMySQL}
			if inMySQL {
				if err := json.Unmarshal([]byte(row.Value), &got.Value); err != nil {
					diffs = append(diffs, fmt.Sprintf("%s: %d bytes that are not a JSON string: %v", key.name, len(row.Value), err))
					continue
				}
			}
			switch {
			case !key.readMayReturn(got):
				diffs = append(diffs, fmt.Sprintf("%s: found=%v %q; last acknowledged %q (any: %v), in doubt %q",
					key.name, got.Found, got.Value, key.acked, key.hasAcked, key.inDoubt))
			case got.Found && (!key.hasAcked || got.Value != key.acked):
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
			got, res := l.stack.GetAttr(ctx, w.owner, key.name)
			if !res.OK() {
				t.Errorf("reading %s after recovery: %s, want ok", key.name, res)
				continue
			}
			row, inMySQL := stored[attrKey{UserID: w.owner.ID, Name: key.name}]
			want := attrValue{Found: inMySQL}
			if inMySQL {
				_ = json.Unmarshal([]byte(row.Value), &want.Value) // checkLedger reports a bad value
			}
			if got != want {
				t.Errorf("reading %s after recovery: got found=%v %q, want what MySQL holds: found=%v %q",
					key.name, got.Found, got.Value, want.Found, want.Value)
			}
		}
	}
}
