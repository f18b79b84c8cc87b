package faults_test

import (
	"context"
	"strings"
	"testing"
)

// The checkers are what makes the fault scenarios fail; these tests show that they see each
// kind of difference they look for.

func TestCacheDifferencesSeesStaleRedis(t *testing.T) {
	s := newStack(t)
	owner := s.NewUsers(t, t.Name(), 1)[0]
	ctx := context.Background()
	if res := s.SetAttr(ctx, owner, "written", "new"); !res.OK() {
		t.Fatalf("setting an attribute: %s", res)
	}
	const meta = `v1:{"ct":"2026-01-01T00:00:00Z","lm":"2026-01-01T00:00:00Z","et":"9999-12-31T00:00:00Z"}` + "\n"
	tests := []struct {
		name   string
		attr   string // the attribute whose Redis key the test overwrites
		cached string // what it writes there
		want   string // what the difference must say
	}{
		{name: "a value MySQL lacks", attr: "never-written", cached: meta + `"ghost"`, want: "MySQL has no such attribute"},
		{name: "an older value", attr: "written", cached: meta + `"old"`, want: "Redis holds version 1"},
		{name: "absent over a row", attr: "written", cached: "n", want: "Redis marks it absent"},
		{name: "a tombstone over a row", attr: "written", cached: "x1", want: "Redis marks it absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := env.Prefix + "{" + owner.ID + "}:a:" + tt.attr
			if err := env.Redis.Set(ctx, key, tt.cached, 0).Err(); err != nil {
				t.Fatalf("writing the Redis key: %v", err)
			}
			t.Cleanup(func() { env.Redis.Del(ctx, key) })
			diffs, err := cacheDifferences(ctx)
			if err != nil {
				t.Fatalf("cacheDifferences: %v", err)
			}
			if len(diffs) != 1 || !strings.Contains(diffs[0], owner.ID+"/"+tt.attr) || !strings.Contains(diffs[0], tt.want) {
				t.Fatalf("cacheDifferences() = %q, want one difference of %s saying %q", diffs, tt.attr, tt.want)
			}
		})
	}
}

func TestLedgerDifferences(t *testing.T) {
	owner := user{ID: "zusr-owner"}
	stored := map[attrKey]storedAttr{
		{UserID: owner.ID, Name: "acked"}:     {Value: `"a2"`},
		{UserID: owner.ID, Name: "committed"}: {Value: `"c2"`},
		{UserID: owner.ID, Name: "lost"}:      {Value: `"l1"`},
		{UserID: owner.ID, Name: "phantom"}:   {Value: `"p1"`},
	}
	w := &worker{owner: owner, keys: []*keyLedger{
		{name: "acked", acked: "a2", hasAcked: true},
		{name: "committed", acked: "c1", hasAcked: true, inDoubt: []string{"c2"}},
		{name: "lost", acked: "l2", hasAcked: true},
		{name: "phantom", inDoubt: nil},
		{name: "missing", acked: "m1", hasAcked: true},
		{name: "refused", inDoubt: []string{"r1"}},
	}}
	diffs, inDoubtCommitted := ledgerDifferences([]*worker{w}, stored)
	var gotNames []string
	for _, d := range diffs {
		name, _, _ := strings.Cut(d, ":")
		gotNames = append(gotNames, name)
	}
	if want := []string{"lost", "phantom", "missing"}; strings.Join(gotNames, ",") != strings.Join(want, ",") {
		t.Errorf("ledgerDifferences reported %q, want differences of %q", diffs, want)
	}
	if inDoubtCommitted != 1 {
		t.Errorf("inDoubtCommitted = %d, want 1 (committed)", inDoubtCommitted)
	}
}
