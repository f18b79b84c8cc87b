package persist

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// SetAttrs, alone or as a group-commit batch, writes its rows through setAttrRows, which takes
// one of two ways: setUserAttrsInOneTrip (onetrip.go) for user attributes, or
// setAttrsByStatements, which session attributes need (their sessions are locked and checked
// before the upsert), as do writes under a quota and writes too large for one packet. Both send
// the same statements in the same order and lock rows in primary-key order (compareAttrRows).

// attrResult is what a write returns for one row: the row as stored, or the row's own error.
type attrResult struct {
	stored *attrcache.Attr
	err    error
}

// setAttrRows writes rows (distinct keys) as SetAttrs says, in one transaction, and returns the
// result of each row in the order of rows, and the token of the change log's pending mark (0:
// none). A row of a session that does not exist or has ended at its now gets ErrNotFound; an
// error fails every row, and nothing is stored. With a quota on, rows must be of one scope.
func (db *DB) setAttrRows(ctx context.Context, rows []attrRow) (results []attrResult, token int64, err error) {
	if cid := attrcache.CIDOf(ctx); cid != "" {
		for i := range rows {
			if rows[i].cid == "" {
				rows[i].cid = cid
			}
		}
	}
	if !db.quota.on() && !slices.ContainsFunc(rows, attrRow.inSession) {
		results, token, fits, err := db.setUserAttrsInOneTrip(ctx, rows)
		if fits {
			return results, token, err
		}
	}
	return db.setAttrsByStatements(ctx, rows)
}

// setAttrsByStatements is setAttrRows in a transaction of statements sent one by one, run again
// as inWriteTx says.
func (db *DB) setAttrsByStatements(ctx context.Context, rows []attrRow) (results []attrResult, token int64, err error) {
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		if results, err = db.setAttrsByStatementsIn(ctx, tx, rows); err != nil {
			return err
		}
		changes := attrSets(storedOf(results))
		cid, uniform := commonCID(rows)
		if !uniform {
			for i, j := 0, 0; i < len(results); i++ {
				if results[i].stored != nil {
					changes[j].CID = rows[i].cid
					j++
				}
			}
		}
		token, err = logChangesAs(ctx, tx, cid, changes)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return results, token, nil
}

// setAttrsByStatementsIn does the work of setAttrsByStatements in tx, but for the change log:
// it locks the quota's user row (with a quota on), then the sessions of rows, checks the quota,
// and writes the rows of live sessions and user scopes.
func (db *DB) setAttrsByStatementsIn(ctx context.Context, tx *sql.Tx, rows []attrRow) ([]attrResult, error) {
	if db.quota.on() {
		if slices.ContainsFunc(rows, func(r attrRow) bool { return r.scope != rows[0].scope }) {
			return nil, errors.New("a write under a quota spans several scopes")
		}
		if err := db.lockQuotaOrNotFound(ctx, tx, rows[0].scope.UserID); err != nil {
			return nil, err
		}
	}
	scopes := make([]attrcache.AttrScope, len(rows))
	for i, row := range rows {
		scopes[i] = row.scope
	}
	ends, err := lockSessions(ctx, tx, scopes)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	results := make([]attrResult, len(rows))
	live := make([]attrRow, 0, len(rows))
	for i, row := range rows {
		if row.inSession() {
			if results[i].err = liveSession(ends, row.scope, row.now); results[i].err != nil {
				continue
			}
		}
		live = append(live, row)
	}
	if len(live) == 0 {
		return results, nil
	}
	if db.quota.on() {
		items := make([]attrcache.AttrWrite, len(live))
		for i, row := range live {
			items[i] = row.item
		}
		if err := db.checkQuota(ctx, tx, live[0].scope, items, live[0].now); err != nil {
			return nil, err
		}
	}
	stored, err := db.insertAttrRows(ctx, tx, live, updateExisting)
	if err != nil {
		return nil, err
	}
	for i, row := range rows {
		if results[i].err == nil {
			results[i].stored = stored[row.key()]
		}
	}
	return results, nil
}

// storedOf returns the stored rows of results, nil for those that failed, in their order.
func storedOf(results []attrResult) []*attrcache.Attr {
	stored := make([]*attrcache.Attr, len(results))
	for i, r := range results {
		stored[i] = r.stored
	}
	return stored
}

// firstRowError returns the error of the first of results that failed, or nil.
func firstRowError(results []attrResult) error {
	for _, r := range results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// onExistingRow says what a write does with an item whose key already has a row.
type onExistingRow int

const (
	// failOnExisting makes any existing row a conflict (ErrConflict).
	failOnExisting onExistingRow = iota
	// updateExisting updates the row as SetAttrs says.
	updateExisting
)

// attrRow is one row to write: an item of a scope, written at now.
type attrRow struct {
	scope attrcache.AttrScope
	item  attrcache.AttrWrite
	now   time.Time
	cid   string // the writing call's, for the change log
}

// rowsOf returns the rows that write items into scope at now.
func rowsOf(scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) []attrRow {
	rows := make([]attrRow, len(items))
	for i, item := range items {
		rows[i] = attrRow{scope: scope, item: item, now: now}
	}
	return rows
}

// inSession reports whether the row is a session attribute.
func (r attrRow) inSession() bool { return r.scope.IsSession() }

// key returns the primary key of the row.
func (r attrRow) key() attrKey { return attrKey{scope: r.scope, name: r.item.Name} }

// sortedRows returns a copy of rows in primary-key order (compareAttrRows), allocated once.
func sortedRows(rows []attrRow) []attrRow {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, compareAttrRows)
	return sorted
}

// compareAttrRows orders rows as sso_attr's primary key does: by user, session hash, then name,
// in byte order.
func compareAttrRows(a, b attrRow) int {
	return cmp.Or(strings.Compare(a.scope.UserID, b.scope.UserID),
		strings.Compare(string(a.scope.Session), string(b.scope.Session)),
		strings.Compare(a.item.Name, b.item.Name))
}

// insertAttrRows writes rows (distinct keys) and returns them as stored. It sets the version of
// new rows (versionFloorStmt), then inserts the rows sorted in primary-key order, so that
// concurrent writes lock their rows in the same order, split into statements that each fit in the
// largest packet the server accepts. onExisting says what happens to a row whose key is taken.
func (db *DB) insertAttrRows(ctx context.Context, tx *sql.Tx, rows []attrRow, onExisting onExistingRow) (map[attrKey]*attrcache.Attr, error) {
	sorted := sortedRows(rows)
	users := usersOf(sorted)
	if _, err := tx.ExecContext(ctx, versionFloorStmt(len(users)), users...); err != nil {
		return nil, mapError(err)
	}
	var stored []*attrcache.Attr
	for _, batch := range splitBySize(sorted, db.maxPacket-attrStmtOverheadBytes, attrRowBytes) {
		stmt, args := insertAttrsStmt(batch, onExisting)
		attrs, err := queryAttrRows(ctx, tx, stmt, args...)
		if err != nil {
			return nil, err
		}
		stored = append(stored, attrs...)
	}
	keys := make([]attrKey, len(sorted))
	for i, row := range sorted {
		keys[i] = row.key()
	}
	return attrsByKey(stored, keys)
}

// insertAttrItems is insertAttrRows of items in scope at now, and returns them as stored in the
// order of items (distinct names).
func (db *DB) insertAttrItems(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time, onExisting onExistingRow) ([]*attrcache.Attr, error) {
	byKey, err := db.insertAttrRows(ctx, tx, rowsOf(scope, items, now), onExisting)
	if err != nil {
		return nil, err
	}
	stored := make([]*attrcache.Attr, len(items))
	for i, item := range items {
		stored[i] = byKey[attrKey{scope: scope, name: item.Name}]
	}
	return stored, nil
}
