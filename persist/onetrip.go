package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/attrcache/attrcache"
)

// A one-round-trip write sends the statements of setAttrsByStatements, in their order, as one
// multi-statement query: START TRANSACTION; version floor; upsert, returning the rows as stored;
// log; mark pending; COMMIT. The server stops at the first that fails. Only connections of the
// pool DB.oneTrip accept several statements in one query; a write that fails leaves its
// connection rolled back or closed, never holding part of the write. As with a COMMIT sent alone, a connection that
// breaks while the results are read leaves unknown whether the write was committed.

// setUserAttrsInOneTrip is setAttrRows for rows of user scopes only, with no quota on, in a
// transaction sent in one round trip (the statements of setAttrsByStatements, logging included),
// run again as inWriteTx does when InnoDB breaks a deadlock with it. fits is false, and nothing
// is done, when the write may not fit in one packet: the caller writes the rows statement by
// statement instead. Errors are mapped.
func (db *DB) setUserAttrsInOneTrip(ctx context.Context, rows []attrRow) (results []attrResult, token int64, fits bool, err error) {
	token = newChangeToken()
	query, args, keys, fits := db.oneTripUpsert(rows, token)
	if !fits {
		return nil, 0, false, nil
	}
	stored, err := db.runOneTrip(ctx, query, args, keys)
	if err != nil {
		return nil, 0, true, err
	}
	results = make([]attrResult, len(rows))
	for i, row := range rows {
		results[i].stored = stored[row.key()]
	}
	return results, token, true, nil
}

// oneTripUpsert returns the query that writes rows in one round trip, logged under token, its
// arguments and the keys it writes; fits is false when the query may be larger than the largest
// packet.
func (db *DB) oneTripUpsert(rows []attrRow, token int64) (query string, args []any, keys []attrKey, fits bool) {
	size := oneTripStmtOverheadBytes
	for _, row := range rows {
		size += oneTripRowBytes(row)
	}
	if size > db.maxPacket {
		return "", nil, nil, false
	}
	sorted := sortedRows(rows)
	keys = make([]attrKey, len(sorted))
	for i, row := range sorted {
		keys[i] = row.key()
	}
	users := usersOf(sorted)
	upsert, upsertArgs := insertAttrsStmt(sorted, updateExisting)
	where, keyArgs := keysOfMany(keys)
	logStmt, logArgs := logAttrSetsStmt(sorted, where)
	query = strings.Join([]string{"START TRANSACTION", versionFloorStmt(len(users)), upsert,
		logStmt, markPendingStmt, "COMMIT"}, ";\n")
	args = make([]any, 0, len(users)+len(upsertArgs)+len(logArgs)+len(keyArgs)+1)
	args = append(append(append(append(append(args, users...), upsertArgs...), logArgs...), keyArgs...), token)
	return query, args, keys, true
}

// runOneTrip runs query, a write of keys from oneTripUpsert, again while InnoDB rolls it back to
// break a deadlock, as inWriteTx does, and returns the rows of keys as stored. Errors are mapped.
func (db *DB) runOneTrip(ctx context.Context, query string, args []any, keys []attrKey) (map[attrKey]*attrcache.Attr, error) {
	var attrs []*attrcache.Attr
	err := retryDeadlocks(ctx, func() error {
		var err error
		attrs, err = db.queryOneTrip(ctx, query, args)
		return err
	})
	if err != nil {
		return nil, mapError(err)
	}
	return attrsByKey(attrs, keys)
}

// queryOneTrip runs query, statements of which the first with a result set reads attrColumns, on a
// connection of the one-trip pool, and returns the attributes it read once every statement has
// succeeded. When one fails, it rolls the connection back (rollBackOrDiscard) before returning
// the first failure, unmapped.
func (db *DB) queryOneTrip(ctx context.Context, query string, args []any) (attrs []*attrcache.Attr, err error) {
	conn, err := db.oneTrip.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rollBackOrDiscard(ctx, conn)
		}
		_ = conn.Close() // sql.ErrConnDone once discarded
	}()
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	attrs, err = scanAttrRows(rows)
	// Closing the rows reads the results left, the last statement's (COMMIT) included.
	if closeErr := rows.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

// rollBackOrDiscard rolls back any transaction that conn holds open. When it cannot (the
// connection broke, ctx ended, the server refused), it makes database/sql close conn instead of
// putting it back in the pool: a driver.ErrBadConn from Raw does that, and the server rolls back
// what a closed connection left open.
func rollBackOrDiscard(ctx context.Context, conn *sql.Conn) {
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err == nil {
		return
	}
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
