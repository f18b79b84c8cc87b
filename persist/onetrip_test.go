package persist

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
)

// openOneConnStore opens a store of the test database whose one-trip pool holds a single
// connection, so that consecutive one-round-trip writes run on the same one unless it is closed.
func openOneConnStore(t *testing.T) *DB {
	t.Helper()
	db := openDB(t, testDSN)
	db.oneTrip.SetMaxOpenConns(1)
	db.oneTrip.SetMaxIdleConns(1)
	return db
}

// oneTripConnID returns the server's id of the connection of db's one-trip pool that a query
// gets: with a pool of one connection, the id of that connection.
func oneTripConnID(t *testing.T, db *DB) int64 {
	t.Helper()
	var id int64
	if err := db.oneTrip.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatalf("connection id: %v", err)
	}
	return id
}

func TestOneTripPoolSettings(t *testing.T) {
	db := openDB(t, testDSN)
	if _, err := db.SQL().ExecContext(t.Context(), "DO 1; DO 2"); err == nil {
		t.Error("the main pool ran two statements in one query, want an error")
	}
	if _, err := db.oneTrip.ExecContext(t.Context(), "DO 1; DO 2"); err != nil {
		t.Errorf("the one-trip pool refused two statements in one query: %v", err)
	}
	const sessionVars = "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@SESSION.character_set_connection, " +
		"@@SESSION.collation_connection, @@SESSION.autocommit, @@SESSION.tx_isolation, DATABASE()"
	read := func(name string, q querier) [7]string {
		t.Helper()
		rows, err := q.QueryContext(t.Context(), sessionVars)
		if err != nil {
			t.Fatalf("session variables of the %s pool: %v", name, err)
		}
		defer rows.Close()
		var vars [7]string
		if !rows.Next() {
			t.Fatalf("session variables of the %s pool: no row (%v)", name, rows.Err())
		}
		if err := rows.Scan(&vars[0], &vars[1], &vars[2], &vars[3], &vars[4], &vars[5], &vars[6]); err != nil {
			t.Fatal(err)
		}
		return vars
	}
	if main, oneTrip := read("main", db.SQL()), read("one-trip", db.oneTrip); main != oneTrip {
		t.Errorf("session variables differ:\n    main pool %q\none-trip pool %q", main, oneTrip)
	}
}

func TestOneTripWrites(t *testing.T) {
	now := attrcache.Now()
	items := []attrcache.AttrWrite{{Name: "b", Value: `1`}, {Name: "a", Value: `"two"`, IsEncrypted: true}}

	t.Run("user attributes: one round trip", func(t *testing.T) {
		db := openDB(t, testDSN)
		scope := userScope(t)
		got := setAttrs(t, db, scope, now, items...)
		checkAttrs(t, "SetAttrs", got, created(scope, now, items...))
		checkReadBack(t, db, scope, now, got)
		if open := db.oneTrip.Stats().OpenConnections; open != 1 {
			t.Errorf("the one-trip pool has %d connections, want the write's 1", open)
		}
	})
	t.Run("group-commit batch of user attributes: one round trip", func(t *testing.T) {
		db, reg := openGroupDB(t, GroupCommit{MaxRows: 2, MaxWait: forever, Workers: 1})
		writes := []write{{userScope(t), items[0], now}, {userScope(t), items[1], now}}
		stored, errs := setConcurrently(t, db, writes)
		for i, w := range writes {
			if errs[i] != nil {
				t.Fatalf("write %d: %v", i, errs[i])
			}
			checkAttrs(t, fmt.Sprintf("write %d", i), stored[i:i+1], created(w.scope, now, w.item))
		}
		if batches, rows := batchStats(t, reg); batches != 1 || rows != 2 {
			t.Errorf("%d batches of %d writes in all, want 1 of 2", batches, rows)
		}
		if open := db.oneTrip.Stats().OpenConnections; open != 1 {
			t.Errorf("the one-trip pool has %d connections, want the batch's 1", open)
		}
	})
	t.Run("session attributes: statement by statement", func(t *testing.T) {
		db := openDB(t, testDSN)
		scope := sessionScope(t, now.Add(time.Hour))
		got := setAttrs(t, db, scope, now, items...)
		checkAttrs(t, "SetAttrs", got, created(scope, now, items...))
		if open := db.oneTrip.Stats().OpenConnections; open != 0 {
			t.Errorf("the one-trip pool has %d connections, want none", open)
		}
	})
	t.Run("too large for one packet: statement by statement", func(t *testing.T) {
		small := *testDB
		small.maxPacket = 16 << 10
		scope := userScope(t)
		value := `"` + strings.Repeat("v", 1<<10) + `"`
		large := make([]attrcache.AttrWrite, 20)
		for i := range large {
			large[i] = attrcache.AttrWrite{Name: string(rune('a' + i)), Value: value}
		}
		if _, _, fits, _ := small.setUserAttrsInOneTrip(t.Context(), rowsOf(scope, large, now)); fits {
			t.Fatal("20 KiB of rows fit in a 16 KiB packet")
		}
		if stored := storedAttrs(t, testDB, scope); len(stored) != 0 {
			t.Errorf("a write that did not fit stored %d rows", len(stored))
		}
		got := setAttrs(t, &small, scope, now, large...)
		checkAttrs(t, "SetAttrs", got, created(scope, now, large...))
	})
}

// TestOneTripFailures makes one statement of a one-round-trip write fail after the upsert of a
// valid row, then writes again on the same connection: the failure is reported, and nothing of
// the failed write is ever committed, by the next write's START TRANSACTION least of all.
func TestOneTripFailures(t *testing.T) {
	now := attrcache.Now()
	isNotFound := func(err error) bool { return errors.Is(err, attrcache.ErrNotFound) }
	isInvalidInput := func(err error) bool { return attrcache.CodeOf(err) == attrcache.CodeInvalidInput }
	isMySQLError := func(number uint16) func(err error) bool {
		return func(err error) bool {
			myErr, ok := errors.AsType[*mysql.MySQLError](err)
			return ok && myErr.Number == number
		}
	}
	const (
		errOutOfRangeValue = 1690 // ER_DATA_OUT_OF_RANGE: version + 1 above BIGINT's maximum
		errXAActive        = 1399 // ER_XAER_RMFAIL: COMMIT and ROLLBACK refused in an active XA transaction
	)

	tests := []struct {
		name string
		// bad is the write that makes the statement fail, next to a valid one.
		bad func(t *testing.T) attrRow
		// edit changes the query (nil: none).
		edit  func(query string) string
		fails func(error) bool
		// discarded says that the connection cannot be rolled back and must be closed.
		discarded bool
		// xa says that the case needs XA transactions, which a Galera node refuses.
		xa bool
	}{
		{
			name: "upsert: unknown user",
			bad: func(t *testing.T) attrRow {
				return attrRow{attrcache.AttrScope{UserID: attrcache.NewUserID()}, attrcache.AttrWrite{Name: "x", Value: `1`}, now, ""}
			},
			fails: isNotFound,
		},
		{
			name: "upsert: name too long",
			bad: func(t *testing.T) attrRow {
				tooLong := strings.Repeat("é", attrcache.MaxAttrNameBytes/2+1)
				return attrRow{userScope(t), attrcache.AttrWrite{Name: tooLong, Value: `1`}, now, ""}
			},
			fails: isInvalidInput,
		},
		{
			name: "stamp: version out of range, after the upsert wrote every row",
			bad: func(t *testing.T) attrRow {
				scope := userScope(t)
				insertAttr(t, testDB, scope.UserID, "", "x")
				if _, err := testDB.SQL().ExecContext(t.Context(), "UPDATE sso_attr SET version = ? WHERE user_id = ?",
					int64(math.MaxInt64), scope.UserID); err != nil {
					t.Fatal(err)
				}
				return attrRow{scope, attrcache.AttrWrite{Name: "x", Value: `"new"`}, now, ""}
			},
			fails: isMySQLError(errOutOfRangeValue),
		},
		{
			name: "commit: refused, and so is the rollback",
			bad: func(t *testing.T) attrRow {
				return attrRow{userScope(t), attrcache.AttrWrite{Name: "x", Value: `1`}, now, ""}
			},
			edit: func(query string) string {
				return strings.Replace(query, "START TRANSACTION", "XA START 'persist-test'", 1)
			},
			fails:     isMySQLError(errXAActive),
			discarded: true,
			xa:        true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.xa && onGalera(t) {
				t.Skip("Galera refuses XA transactions, the way this case makes COMMIT fail")
			}
			db := openOneConnStore(t)
			valid := attrRow{userScope(t), attrcache.AttrWrite{Name: "a", Value: `"valid"`}, now, ""}
			bad := tt.bad(t)
			badBefore := storedAttrs(t, testDB, bad.scope)
			connID := oneTripConnID(t, db)

			query, args, keys, fits := db.oneTripUpsert([]attrRow{valid, bad}, newChangeToken())
			if !fits {
				t.Fatal("two small rows do not fit in a packet")
			}
			if tt.edit != nil {
				query = tt.edit(query)
			}
			_, err := db.runOneTrip(t.Context(), query, args, keys)
			if err == nil || !tt.fails(err) {
				t.Fatalf("the failed write's error = %v, not the one wanted", err)
			}

			// The next write takes the pool's only connection.
			next := attrRow{userScope(t), attrcache.AttrWrite{Name: "next", Value: `"next"`}, now, ""}
			stored, _, fits, err := db.setUserAttrsInOneTrip(t.Context(), []attrRow{next})
			if !fits || err != nil {
				t.Fatalf("the next write: fits %t, error %v", fits, err)
			}
			checkAttrs(t, "the next write", []*attrcache.Attr{stored[0].stored}, created(next.scope, now, next.item))
			if got := oneTripConnID(t, db); (got != connID) != tt.discarded {
				t.Errorf("connection %d before the failure, %d after: want it closed %t", connID, got, tt.discarded)
			}

			if rows := storedAttrs(t, testDB, valid.scope); len(rows) != 0 {
				t.Errorf("the failed write's valid row was committed: %v", rows)
			}
			if rows := storedAttrs(t, testDB, bad.scope); len(rows) != len(badBefore) || (len(rows) > 0 && rows["x"].Value != badBefore["x"].Value) {
				t.Errorf("the failed write's faulty row was committed: %v, want %v", rows, badBefore)
			}
		})
	}
}

// TestRollBackOrDiscard checks that a connection left in a transaction goes back to the pool
// rolled back, or is closed when the ROLLBACK cannot be sent.
func TestRollBackOrDiscard(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		discarded bool
	}{
		{"rolled back", t.Context(), false},
		{"context ended: closed", cancelled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openOneConnStore(t)
			scope := userScope(t)
			connID := oneTripConnID(t, db)
			conn, err := db.oneTrip.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(t.Context(), "START TRANSACTION; "+
				`INSERT INTO sso_attr (user_id, ust_hash, name, value, is_encrypted, creation_time, last_modified, expiration_time, version)
				VALUES (?, '', 'a', '1', FALSE, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)`, scope.UserID); err != nil {
				t.Fatal(err)
			}
			rollBackOrDiscard(tt.ctx, conn)
			_ = conn.Close()

			if _, err := db.oneTrip.ExecContext(t.Context(), "START TRANSACTION; COMMIT"); err != nil {
				t.Fatal(err)
			}
			if got := oneTripConnID(t, db); (got != connID) != tt.discarded {
				t.Errorf("connection %d before, %d after: want it closed %t", connID, got, tt.discarded)
			}
			if rows := storedAttrs(t, testDB, scope); len(rows) != 0 {
				t.Errorf("the transaction left open was committed: %v", rows)
			}
		})
	}
}
