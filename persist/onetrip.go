package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/attrcache/attrcache"
)

// One-round-trip writes. In a loaded service a round trip to MySQL costs a millisecond or more
// (waiting for a CPU at both ends), more than the statements of a write of attributes take to
// run, so a write of user attributes
// (SetAttrs of a user scope, alone or as a group-commit batch of user scopes only) sends its
// statements together, as one multi-statement query:
//
//	START TRANSACTION; <upsert>; <UPDATE stamping the inserted rows' versions>;
//	<INSERT logging the rows as set (changelog.go)>; <INSERT marking the log row pending>;
//	<SELECT reading back>; COMMIT
//
// They are the statements of the statement-by-statement path, in its order: the server runs them
// one after the other and stops at the first that fails, so the inserted rows' versions are still
// stamped once the upsert holds the locks of every row, and the version clock is read after any
// lock wait (see stampVersions).
// The parameters are interpolated on the client, as everywhere.
//
// The driver skips the results of START TRANSACTION, the upsert, the UPDATE and the INSERTs, so the query
// returns the first failure among them and the SELECT, or the SELECT's rows (already: a
// Rows.NextResultSet would skip them); closing the rows reads the result of COMMIT. As with a
// COMMIT sent alone, a connection that breaks while the results are read leaves unknown whether
// the write was committed.
//
// Only connections of a pool of their own (DB.oneTrip) accept several statements in one query,
// so that no other query can carry a second statement. Each write takes one of them for itself
// (sql.Conn). When the write fails, its connection may hold an open transaction with part of
// the write, which the next write's START TRANSACTION would commit: the connection is rolled
// back before it goes back to the pool, and closed instead when the ROLLBACK fails.
//
// A write whose statements may not fit in one packet (rows of large values) goes statement by
// statement instead, which splits the upsert.

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
	upsert, args := insertAttrsStmt(sorted, updateExisting)
	where, keyArgs := keysOfMany(keys)
	query = strings.Join([]string{"START TRANSACTION", upsert, stampVersionsStmt(where),
		logAttrSetsStmt(where), markPendingStmt, readBackStmt(where), "COMMIT"}, ";\n")
	args = append(append(args, keyArgs...), keyArgs...)
	args = append(append(args, token), keyArgs...)
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

// queryOneTrip runs query, statements of which the one before last reads attrColumns, on a
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
