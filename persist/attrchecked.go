package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// Checked writes (compare-and-set and per-item results) lock the user's row exclusively, then
// the rows of their names, and decide each item on the locked rows: so the checked writes of one
// user take turns, and no other write of the same rows comes between a check and its write.

// WriteAttrsChecked applies op to items as attrcache.AttrStore says, in one transaction. Names
// must be distinct. A user that does not exist, or a session scope's session that does not exist
// or has ended at now, fails the call with attrcache.ErrNotFound.
func (db *DB) WriteAttrsChecked(ctx context.Context, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, atomic bool, now time.Time) ([]attrcache.AttrOutcome, error) {
	if len(items) == 0 {
		return nil, nil
	}
	if len(attrcache.LastWritePerName(items)) != len(items) {
		return nil, fmt.Errorf("persist: checked write of attributes of %s: a name is given twice", scope.UserID)
	}
	var outcomes []attrcache.AttrOutcome
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		outcomes, token, err = db.writeAttrsCheckedIn(ctx, tx, scope, op, items, atomic, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: checked write of attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return outcomes, nil
}

// writeAttrsCheckedIn does the work of WriteAttrsChecked in tx, and returns the token of the
// change log's pending mark (0: none).
func (db *DB) writeAttrsCheckedIn(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, atomic bool, now time.Time) ([]attrcache.AttrOutcome, int64, error) {
	found, err := lockUserRow(ctx, tx, scope.UserID, "FOR UPDATE")
	if err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, attrcache.ErrNotFound
	}
	if err := lockLiveSession(ctx, tx, scope, now); err != nil {
		return nil, 0, err
	}
	current, err := lockCurrentVersions(ctx, tx, scope, itemNames(items), now)
	if err != nil {
		return nil, 0, err
	}
	outcomes := make([]attrcache.AttrOutcome, len(items))
	var passed []int // the indexes of the items to write
	for i, item := range items {
		version, live := current[item.Name]
		switch {
		case item.IfVersion != nil && *item.IfVersion != version:
			outcomes[i].Err = attrcache.ErrVersionMismatch
		case op == attrcache.AttrCreate && live:
			outcomes[i].Err = attrcache.ErrConflict
		case op == attrcache.AttrUpdate && !live:
			continue // nothing to update, and no error
		default:
			passed = append(passed, i)
			continue
		}
		if atomic {
			return nil, 0, outcomes[i].Err
		}
	}
	if len(passed) == 0 {
		return outcomes, 0, nil
	}
	if op == attrcache.AttrDelete {
		names := make([]string, len(passed))
		for j, i := range passed {
			names[j] = items[i].Name
		}
		tombstone, token, err := deleteAttrsIn(ctx, tx, scope, names)
		if err != nil {
			return nil, 0, err
		}
		for _, i := range passed {
			outcomes[i].Tombstone = tombstone
		}
		return outcomes, token, nil
	}
	if passed, err = db.withinQuota(ctx, tx, scope, items, passed, outcomes, atomic, now); err != nil || len(passed) == 0 {
		return outcomes, 0, err
	}
	writes := make([]attrcache.AttrWrite, len(passed))
	for j, i := range passed {
		writes[j] = items[i]
	}
	if op == attrcache.AttrCreate {
		// Expired rows of the names give way, their versions kept in the user's floor.
		if err := raiseVersionFloorToExpired(ctx, tx, scope, itemNames(writes), now); err != nil {
			return nil, 0, err
		}
		keys, keyArgs := keysOf(scope, itemNames(writes))
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+keys+" AND expiration_time <= ?",
			append(keyArgs, now)...); err != nil {
			return nil, 0, mapError(err)
		}
	}
	stored, err := db.insertAttrItems(ctx, tx, scope, writes, now, updateExisting)
	if err != nil {
		return nil, 0, err
	}
	for j, i := range passed {
		outcomes[i].Stored = stored[j]
	}
	token, err := logChanges(ctx, tx, attrSets(stored))
	return outcomes, token, err
}

// withinQuota returns the indexes among passed of the items that fit in the user's quota, with
// a quota on, and marks the others' outcomes with attrcache.ErrQuotaExceeded: all of passed when
// they fit together; else, unless atomic (which fails with the error), each item in turn that
// fits with those kept before it.
func (db *DB) withinQuota(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, items []attrcache.AttrWrite, passed []int, outcomes []attrcache.AttrOutcome, atomic bool, now time.Time) ([]int, error) {
	if !db.quota.on() {
		return passed, nil
	}
	of := func(indexes []int) []attrcache.AttrWrite {
		writes := make([]attrcache.AttrWrite, len(indexes))
		for j, i := range indexes {
			writes[j] = items[i]
		}
		return writes
	}
	err := db.checkQuota(ctx, tx, scope, of(passed), now)
	if !errors.Is(err, attrcache.ErrQuotaExceeded) || atomic {
		return passed, err
	}
	var kept []int
	for _, i := range passed {
		err := db.checkQuota(ctx, tx, scope, of(append(kept, i)), now)
		switch {
		case errors.Is(err, attrcache.ErrQuotaExceeded):
			outcomes[i].Err = err
		case err != nil:
			return nil, err
		default:
			kept = append(kept, i)
		}
	}
	return kept, nil
}

// lockCurrentVersions locks the rows of scope with the given names and returns the versions of
// those that are live at now, keyed by name; a missing or expired attribute is not in the map,
// and its version for a compare-and-set is 0. Errors are already mapped.
func lockCurrentVersions(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, names []string, now time.Time) (map[string]int64, error) {
	keys, args := keysOf(scope, names)
	type nameVersion struct {
		name    string
		version int64
	}
	live, err := queryEach(ctx, tx, func(rows *sql.Rows) (nv nameVersion, err error) {
		err = rows.Scan(&nv.name, &nv.version)
		return nv, err
	}, "SELECT name, version FROM sso_attr WHERE "+keys+" AND expiration_time > ? FOR UPDATE", append(args, now)...)
	if err != nil {
		return nil, err
	}
	versions := make(map[string]int64, len(live))
	for _, nv := range live {
		versions[nv.name] = nv.version
	}
	return versions, nil
}

// hasConditions reports whether an item of items has an IfVersion.
func hasConditions(items []attrcache.AttrWrite) bool {
	for _, item := range items {
		if item.IfVersion != nil {
			return true
		}
	}
	return false
}

// writeConditional is SetAttrs, CreateAttrs or UpdateAttrs (op) for items of which some have
// an IfVersion: an atomic checked write, whose stored rows it returns in the order of items
// (those it wrote).
func (db *DB) writeConditional(ctx context.Context, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	outcomes, err := db.WriteAttrsChecked(ctx, scope, op, items, true, now)
	if err != nil {
		return nil, err
	}
	stored := make([]*attrcache.Attr, 0, len(outcomes))
	for _, o := range outcomes {
		if o.Stored != nil {
			stored = append(stored, o.Stored)
		}
	}
	return stored, nil
}
