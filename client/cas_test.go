package client_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/attrcache/attrcache/client"
)

// TestAttrCompareAndSet runs versions, IfVersion and per-item results through every scope: a
// stale version is an *Error of HTTP 409 and E009101 and writes nothing, and Atomic(false)
// writes the items that pass and reports each one.
func TestAttrCompareAndSet(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, a *client.Attrs)
	}{
		{"a stale IfVersion is E009101 and writes nothing", func(t *testing.T, a *client.Attrs) {
			ctx := t.Context()
			var results []client.ItemResult
			must(t, a.Set(ctx, "n", 1, client.Results(&results)))
			v1 := get(t, a, "n").Version
			if v1 <= 0 || len(results) != 1 || results[0] != (client.ItemResult{Name: "n", Version: v1}) {
				t.Fatalf("version %d, Results %+v; want a positive version, the one Get answers", v1, results)
			}
			must(t, a.Set(ctx, "n", 2, client.IfVersion(v1), client.Results(&results)))
			v2 := results[0].Version
			if v2 <= v1 || get(t, a, "n").Version != v2 {
				t.Fatalf("version after a conditional Set %d, Get %d; want one above %d", v2, get(t, a, "n").Version, v1)
			}
			wantCode(t, a.Update(ctx, "n", 3, client.IfVersion(v1)), 409, client.CodeVersionMismatch)
			wantCode(t, a.Delete(ctx, "n", client.IfVersion(v1)), 409, client.CodeVersionMismatch)
			if got := get(t, a, "n"); string(got.Value) != "2" || got.Version != v2 {
				t.Errorf("value %s version %d after refused writes, want 2 and %d", got.Value, got.Version, v2)
			}
			must(t, a.Delete(ctx, "n", client.IfVersion(v2)))
			if got, err := a.Get(ctx, "n"); err != nil || got != nil {
				t.Errorf("Get after a conditional Delete = %+v, %v; want nil", got, err)
			}
		}},
		{"IfVersion(0) writes only an absent attribute", func(t *testing.T, a *client.Attrs) {
			ctx := t.Context()
			must(t, a.Set(ctx, "once", 1, client.IfVersion(0)))
			wantCode(t, a.Set(ctx, "once", 2, client.IfVersion(0)), 409, client.CodeVersionMismatch)
			if got := get(t, a, "once"); string(got.Value) != "1" {
				t.Errorf("value %s, want 1", got.Value)
			}
		}},
		{"one stale item fails a many write whole", func(t *testing.T, a *client.Attrs) {
			ctx := t.Context()
			var results []client.ItemResult
			must(t, a.SetMany(ctx, []client.Item{{Name: "a", Value: 1}, {Name: "b", Value: 1}}, client.Results(&results)))
			if len(results) != 2 || results[0].Version <= 0 || results[1].Version <= 0 {
				t.Fatalf("Results %+v, want a version for a and b", results)
			}
			va, stale := results[0].Version, results[1].Version-1
			err := a.SetMany(ctx, []client.Item{{Name: "a", Value: 2, IfVersion: &va}, {Name: "b", Value: 2, IfVersion: &stale}})
			wantCode(t, err, 409, client.CodeVersionMismatch)
			wantCode(t, a.DeleteItems(ctx, []client.Item{{Name: "a"}, {Name: "b", IfVersion: &stale}}), 409, client.CodeVersionMismatch)
			if got := get(t, a, "a"); string(got.Value) != "1" {
				t.Errorf("value of a %s after refused calls, want 1", got.Value)
			}
			must(t, a.DeleteItems(ctx, []client.Item{{Name: "a", IfVersion: &va}, {Name: "b"}}))
			if names, err := a.Names(ctx); err != nil || len(names) != 0 {
				t.Errorf("Names = %v, %v; want none", names, err)
			}
		}},
		{"Atomic(false) writes the items that pass and reports each", func(t *testing.T, a *client.Attrs) {
			ctx := t.Context()
			must(t, a.Set(ctx, "old", 1))
			stale := int64(1)
			var results []client.ItemResult
			err := a.CreateMany(ctx, []client.Item{
				{Name: "new", Value: 1},
				{Name: "old", Value: 2},
				{Name: "cas", Value: 1, IfVersion: &stale},
				{Name: "new", Value: 3},
			}, client.Atomic(false), client.Results(&results))
			if !errors.Is(err, client.ErrSomeItemsFailed) {
				t.Fatalf("CreateMany: %v, want ErrSomeItemsFailed", err)
			}
			wantItemResults(t, results, []string{"new", "old", "cas", "new"},
				[]client.Code{"", client.CodeAttrExists, client.CodeVersionMismatch, client.CodeInvalidInput}, true)
			if names, err := a.Names(ctx); err != nil || !slices.Equal(names, []string{"new", "old"}) {
				t.Errorf("Names = %v, %v; want [new old]", names, err)
			}

			err = a.DeleteItems(ctx, []client.Item{{Name: "old", IfVersion: &stale}, {Name: "new"}}, client.Atomic(false), client.Results(&results))
			if !errors.Is(err, client.ErrSomeItemsFailed) {
				t.Fatalf("DeleteItems: %v, want ErrSomeItemsFailed", err)
			}
			wantItemResults(t, results, []string{"old", "new"}, []client.Code{client.CodeVersionMismatch, ""}, false)
			if names, err := a.Names(ctx); err != nil || !slices.Equal(names, []string{"old"}) {
				t.Errorf("Names = %v, %v; want [old]", names, err)
			}

			must(t, a.SetMany(ctx, []client.Item{{Name: "x", Value: 1}, {Name: "y", Value: 2}}, client.Atomic(false), client.Results(&results)))
			wantItemResults(t, results, []string{"x", "y"}, []client.Code{"", ""}, true)
		}},
	}
	for _, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, sc.attrs(newUser(t))) })
			}
		})
	}
}

// wantItemResults fails the test unless results has one result per name, in order, with the
// code of codes ("" for an item that succeeded, which has a version when versioned, a write)
// and, for a failed item, an *Error of that code and no version.
func wantItemResults(t *testing.T, results []client.ItemResult, names []string, codes []client.Code, versioned bool) {
	t.Helper()
	if len(results) != len(names) {
		t.Fatalf("Results %+v, want %d items", results, len(names))
	}
	for i, r := range results {
		if r.Name != names[i] {
			t.Errorf("result %d is %q, want %q", i, r.Name, names[i])
		}
		if codes[i] == "" {
			if r.Err != nil || (r.Version > 0) != versioned {
				t.Errorf("result %d (%s) = %+v, want success, with a version: %v", i, r.Name, r, versioned)
			}
			continue
		}
		wantCode(t, r.Err, 200, codes[i])
		if r.Version != 0 {
			t.Errorf("result %d (%s) has version %d, want 0: nothing was written", i, r.Name, r.Version)
		}
	}
}
