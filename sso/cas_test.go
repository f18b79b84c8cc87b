package sso_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// increment reads the counter attribute and writes it plus one, conditional on the version it
// read when cas is set; it returns the write's error.
func increment(ctx context.Context, attrs *sso.AttrAPI, name string, cas bool) error {
	v, err := attrs.Get(ctx, name)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(v.Value))
	if err != nil {
		return err
	}
	var opts []sso.AttrOption
	if cas {
		opts = append(opts, sso.IfVersion(v.Version))
	}
	return attrs.Set(ctx, name, n+1, opts...)
}

// TestCompareAndSetCounter runs 16 goroutines that each increment one counter 25 times by
// read-modify-write with IfVersion, retrying on E009101: the counter ends at exactly 400, and
// conflicts did happen.
func TestCompareAndSetCounter(t *testing.T) {
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	ctx := context.Background()
	must(t, attrs.Set(ctx, "counter", 0))
	const workers, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				err := increment(ctx, attrs, "counter", true)
				if attrcache.CodeOf(err) == attrcache.CodeVersionMismatch {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantValue(t, attrs, "counter", strconv.Itoa(workers*each))
	t.Logf("%d conflicts retried", conflicts)
}

// TestCompareAndSetStopsLostUpdates interleaves two read-modify-write increments by hand: without
// IfVersion the second overwrites the first (a lost update); with it the second gets E009101 and
// writes nothing.
func TestCompareAndSetStopsLostUpdates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, cas := range []bool{false, true} {
		t.Run("cas="+strconv.FormatBool(cas), func(t *testing.T) {
			attrs := e.ownAttrs(t)
			must(t, attrs.Set(ctx, "counter", 0))
			first, second := mustGet(t, attrs, "counter"), mustGet(t, attrs, "counter")
			var opts1, opts2 []sso.AttrOption
			if cas {
				opts1, opts2 = []sso.AttrOption{sso.IfVersion(first.Version)}, []sso.AttrOption{sso.IfVersion(second.Version)}
			}
			must(t, attrs.Set(ctx, "counter", 1, opts1...))
			err := attrs.Set(ctx, "counter", 1, opts2...)
			if !cas {
				must(t, err)
				wantValue(t, attrs, "counter", "1") // two increments, one lost
				return
			}
			if attrcache.CodeOf(err) != attrcache.CodeVersionMismatch {
				t.Fatalf("second write: %v, want E009101", err)
			}
			if v := wantValue(t, attrs, "counter", "1"); v.Version <= first.Version {
				t.Errorf("version %d, want above %d", v.Version, first.Version)
			}
		})
	}
}

// TestCompareAndSetGoAPI checks the Go API's results and conditions on every write, user and
// session attributes: Results gives the new versions, IfVersion(0) means absent, and Atomic(false)
// reports each item.
func TestCompareAndSetGoAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, ust := e.regularUser(t)
	for name, attrs := range map[string]*sso.AttrAPI{"user": e.userAttrs(t, "", ust), "session": e.sessionAttrs(t, ust, ust)} {
		t.Run(name, func(t *testing.T) {
			var results []sso.AttrResult
			must(t, attrs.Create(ctx, "a", 1, sso.IfVersion(0), sso.Results(&results)))
			if len(results) != 1 || results[0].Name != "a" || results[0].Version != mustGet(t, attrs, "a").Version {
				t.Fatalf("Results = %+v, want the version of a", results)
			}
			va := results[0].Version
			if err := attrs.Update(ctx, "a", 2, sso.IfVersion(va+1)); attrcache.CodeOf(err) != attrcache.CodeVersionMismatch {
				t.Fatalf("Update with a stale version: %v, want E009101", err)
			}
			if err := attrs.Delete(ctx, "a", sso.IfVersion(0)); attrcache.CodeOf(err) != attrcache.CodeVersionMismatch {
				t.Fatalf("Delete of an existing attribute with IfVersion(0): %v, want E009101", err)
			}
			wantValue(t, attrs, "a", "1")

			err := attrs.SetMany(ctx, []sso.AttrItem{
				{Name: "a", Value: 3, IfVersion: &va},
				{Name: "b", Value: 1, IfVersion: &va}, // b does not exist: its version is 0
				{Name: "c", Value: 1},
			}, sso.Atomic(false), sso.Results(&results))
			if !errors.Is(err, sso.ErrSomeItemsFailed) {
				t.Fatalf("SetMany: %v, want ErrSomeItemsFailed", err)
			}
			if results[0].Err != nil || results[0].Version <= va || attrcache.CodeOf(results[1].Err) != attrcache.CodeVersionMismatch ||
				results[2].Err != nil || results[2].Version == 0 {
				t.Fatalf("Results = %+v, want a and c written, b refused with E009101", results)
			}
			wantValue(t, attrs, "a", "3")
			wantMissing(t, attrs, "b")

			must(t, attrs.DeleteItems(ctx, []sso.AttrItem{{Name: "a", IfVersion: &results[0].Version}, {Name: "c"}}))
			wantMissing(t, attrs, "a")
			wantMissing(t, attrs, "c")
		})
	}
}
