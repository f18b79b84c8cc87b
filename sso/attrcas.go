package sso

import (
	"context"
	"errors"
	"strconv"

	"github.com/attrcache/attrcache"
)

// IfVersion makes every write or delete of the call conditional (compare-and-set): an item
// applies only when its attribute's current version is version, 0 meaning that the attribute
// does not exist. A mismatch fails the call with E009101 (HTTP 409) and writes nothing, or, with
// Atomic(false), fails the item. An item's own IfVersion takes precedence.
func IfVersion(version int64) AttrOption {
	return func(o *attrOptions) { o.ifVersion = &version }
}

// Atomic(false) makes a many-item write or delete apply each item on its own: an item that
// fails (a limit, an existing name for a create, a version mismatch, a quota) is left out and the
// others are written, in one transaction. The call then fails with an error that wraps
// ErrSomeItemsFailed when any item failed, and Results tells which. Calls are atomic by default.
func Atomic(on bool) AttrOption {
	return func(o *attrOptions) { o.atomic = on }
}

// Results makes a write or delete that succeeds, or that fails with ErrSomeItemsFailed, set
// *dst to one AttrResult per item, in the order of the call's items (or names).
func Results(dst *[]AttrResult) AttrOption {
	return func(o *attrOptions) { o.results = dst }
}

// AttrResult is what a write or delete did with one item. Version is the attribute's new version,
// 0 when it was not written (deleted, missing for an update, or failed). Err is the item's own
// error (an *attrcache.Error), only ever set with Atomic(false).
type AttrResult struct {
	Name    string
	Version int64
	Err     error
}

// ErrSomeItemsFailed is wrapped by the error of an Atomic(false) call in which some item failed;
// the items that did not fail were written.
var ErrSomeItemsFailed = errors.New("some items failed")

// someItemsFailed is the error of an Atomic(false) call in which n items failed.
type someItemsFailed struct{ n int }

func (e *someItemsFailed) Error() string {
	return "sso: " + strconv.Itoa(e.n) + " of the items failed"
}

func (e *someItemsFailed) Unwrap() error { return ErrSomeItemsFailed }

// report sets the results of an atomic call, when asked for, from the attributes it stored.
func (o attrOptions) report(names []string, stored []*attrcache.Attr) {
	if o.results == nil {
		return
	}
	versions := make(map[string]int64, len(stored))
	for _, attr := range stored {
		versions[attr.Name] = attr.Version
	}
	results := make([]AttrResult, len(names))
	for i, name := range names {
		results[i] = AttrResult{Name: name, Version: versions[name]}
	}
	*o.results = results
}

// writeEach is a write or delete (storeOp) with Atomic(false): every item is checked on its own,
// a name repeated fails the items after its first, and the store writes those that pass.
func (x *AttrAPI) writeEach(ctx context.Context, call *attrCall, op attrOpName, storeOp attrcache.AttrWriteOp, items []AttrItem, o attrOptions) error {
	if err := checkItemCount(len(items)); err != nil {
		return err
	}
	results := make([]AttrResult, len(items))
	writes := make([]attrcache.AttrWrite, 0, len(items))
	at := make([]int, 0, len(items)) // the index of each write's item
	seen := make(map[string]bool, len(items))
	failed := 0
	for i, item := range items {
		results[i].Name = item.Name
		w, err := x.api.prepareItem(call, storeOp, item, o)
		if err == nil && seen[item.Name] {
			err = attrcache.InvalidInput("attribute %q is given twice in one call", item.Name)
		}
		if err != nil {
			results[i].Err = err
			failed++
			continue
		}
		seen[item.Name] = true
		writes = append(writes, w)
		at = append(at, i)
	}
	if len(writes) > 0 {
		outcomes, err := x.api.attrs.WriteAttrsChecked(ctx, call.scope, storeOp, writes, false, call.now)
		if err != nil {
			return attrStoreError(err, op.desc, call.scope)
		}
		for j, outcome := range outcomes {
			r := &results[at[j]]
			switch {
			case outcome.Err != nil:
				r.Err = attrStoreError(outcome.Err, op.desc, call.scope)
				failed++
			case outcome.Stored != nil:
				r.Version = outcome.Stored.Version
			}
		}
	}
	if o.results != nil {
		*o.results = results
	}
	if failed > 0 {
		return &someItemsFailed{n: failed}
	}
	return nil
}

// prepareItem is prepareAttrItem for a write, and for a delete (which has no value) the checks
// of its name and its IfVersion.
func (a *API) prepareItem(call *attrCall, op attrcache.AttrWriteOp, item AttrItem, o attrOptions) (attrcache.AttrWrite, error) {
	if op != attrcache.AttrDelete {
		return a.prepareAttrItem(call, item, o)
	}
	if !attrcache.ValidAttrName(item.Name) {
		return attrcache.AttrWrite{}, invalidAttrName()
	}
	w := deleteWrite(item, o)
	if w.IfVersion != nil && *w.IfVersion < 0 {
		return attrcache.AttrWrite{}, attrcache.InvalidInput("attribute %q: if_version must not be negative", item.Name)
	}
	return w, nil
}

// deleteWrite is the deletion of item: its name and its condition, if any.
func deleteWrite(item AttrItem, o attrOptions) attrcache.AttrWrite {
	w := attrcache.AttrWrite{Name: item.Name, IfVersion: o.ifVersion}
	if item.IfVersion != nil {
		w.IfVersion = item.IfVersion
	}
	return w
}

// deleteWrites returns the deletions of items (whose names are valid), and whether any of them
// is conditional; a negative condition fails with E008002.
func deleteWrites(items []AttrItem, o attrOptions) (deletes []attrcache.AttrWrite, conditional bool, err error) {
	deletes = make([]attrcache.AttrWrite, len(items))
	for i, item := range items {
		deletes[i] = deleteWrite(item, o)
		if v := deletes[i].IfVersion; v != nil {
			if *v < 0 {
				return nil, false, attrcache.InvalidInput("attribute %q: if_version must not be negative", item.Name)
			}
			conditional = true
		}
	}
	return deletes, conditional, nil
}

// itemNamesOf returns the names of items, in their order.
func itemNamesOf(items []AttrItem) []string {
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.Name
	}
	return names
}
