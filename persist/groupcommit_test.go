package persist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/metrics/metricstest"
)

// forever is a MaxWait no test reaches: a batch of it closes only when it is full or the queue
// is closed.
const forever = time.Hour

// openGroupDB opens the test database with group commit as gc says, recording on a registry of
// its own, which it returns. The store is closed when the test ends.
func openGroupDB(t *testing.T, gc GroupCommit) (*DB, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	db, err := Open(t.Context(), testDSN, testKeys, WithGroupCommit(gc), WithMetrics(metrics.New(reg)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, reg
}

// batchStats returns how many group-commit transactions reg has recorded, and how many writes
// they held in all.
func batchStats(t *testing.T, reg *prometheus.Registry) (batches, rows int) {
	t.Helper()
	samples, err := metricstest.Samples(reg)
	if err != nil {
		t.Fatal(err)
	}
	return int(samples["attrcache_batch_rows_count"]), int(samples["attrcache_batch_rows_sum"])
}

// waitFor polls cond until it holds, failing the test if it does not within 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// write is one SetAttrs call of one attribute.
type write struct {
	scope attrcache.AttrScope
	item  attrcache.AttrWrite
	now   time.Time
}

// setConcurrently makes the calls of writes on db, all at once, and returns their results in
// the order of writes.
func setConcurrently(t *testing.T, db *DB, writes []write) ([]*attrcache.Attr, []error) {
	t.Helper()
	stored := make([]*attrcache.Attr, len(writes))
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			var got []*attrcache.Attr
			got, errs[i] = db.SetAttrs(t.Context(), w.scope, []attrcache.AttrWrite{w.item}, w.now)
			if errs[i] == nil {
				stored[i] = got[0]
			}
		})
	}
	wg.Wait()
	return stored, errs
}

// blockWorker keeps the only worker of db busy: a transaction of the test locks a row, and db
// is made to write that row. It returns once that write waits for the lock, with a function
// that releases the lock and returns the write's error.
func blockWorker(t *testing.T, db *DB) (release func() error) {
	t.Helper()
	scope := userScope(t)
	insertAttr(t, testDB, scope.UserID, "", "blocker")
	tx, err := testDB.SQL().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	var locked int
	err = tx.QueryRowContext(t.Context(),
		"SELECT 1 FROM sso_attr WHERE user_id = ? AND ust_hash = '' AND name = 'blocker' FOR UPDATE", scope.UserID).Scan(&locked)
	if err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: "blocker", Value: `"unblocked"`}}, attrcache.Now())
		blocked <- err
	}()
	// The process list, unlike INNODB_TRX, is not a cache that polling keeps from refreshing.
	waitFor(t, "the write of the locked row to start", func() bool {
		var waiting int
		err := testDB.SQL().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE INFO LIKE CONCAT('INSERT INTO sso_attr%', ?, '%')`, scope.UserID).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		return waiting > 0
	})
	return func() error {
		_ = tx.Rollback()
		return <-blocked
	}
}

// queued returns how many writes wait in db's queue.
func queued(db *DB) int { return db.committer.queue.Len() }

func TestGroupCommitFormsBatches(t *testing.T) {
	const writes = 20
	db, reg := openGroupDB(t, GroupCommit{MaxRows: writes, MaxWait: forever, Workers: 1})
	scope := userScope(t)
	now := attrcache.Now()
	calls := make([]write, writes)
	for i := range calls {
		calls[i] = write{scope, attrcache.AttrWrite{Name: fmt.Sprintf("attr-%02d", i), Value: fmt.Sprint(i)}, now}
	}
	stored, errs := setConcurrently(t, db, calls)
	for i, call := range calls {
		if errs[i] != nil {
			t.Errorf("SetAttrs of %s: %v", call.item.Name, errs[i])
			continue
		}
		checkAttrs(t, "SetAttrs of "+call.item.Name, stored[i:i+1], created(scope, now, call.item))
	}
	// The batch closes only when full: one transaction holds every write.
	if batches, rows := batchStats(t, reg); batches != 1 || rows != writes {
		t.Errorf("%d batches of %d writes in all, want 1 of %d", batches, rows, writes)
	}
	if got := len(storedAttrs(t, testDB, scope)); got != writes {
		t.Errorf("%d attributes stored, want %d", got, writes)
	}
}

func TestGroupCommitPerCallerErrors(t *testing.T) {
	t0 := attrcache.Now()
	sessionEnds := t0.Add(time.Hour)
	live, ended := sessionScope(t, t0.Add(2*time.Hour)), sessionScope(t, sessionEnds)
	afterEnd := sessionEnds.Add(time.Minute)
	user, other := userScope(t), userScope(t)
	unknownUser := attrcache.AttrScope{UserID: attrcache.NewUserID()}
	tooLong := strings.Repeat("é", attrcache.MaxAttrNameBytes/2+1) // 192 bytes

	isNotFound := func(err error) bool { return errors.Is(err, attrcache.ErrNotFound) }
	isInvalidInput := func(err error) bool { return attrcache.CodeOf(err) == attrcache.CodeInvalidInput }
	item := func(name string) attrcache.AttrWrite { return attrcache.AttrWrite{Name: name, Value: `"` + name + `"`} }

	tests := []struct {
		name   string
		writes []write
		// fails is nil for a write that must succeed, else what its error must be.
		fails []func(error) bool
	}{
		{
			"unknown user",
			[]write{{user, item("a"), t0}, {unknownUser, item("a"), t0}, {other, item("b"), t0}},
			[]func(error) bool{nil, isNotFound, nil},
		},
		{
			"session ended",
			[]write{{live, item("a"), afterEnd}, {ended, item("a"), afterEnd}, {user, item("c"), afterEnd}},
			[]func(error) bool{nil, isNotFound, nil},
		},
		{
			"name too long",
			[]write{{user, item("d"), t0}, {other, item(tooLong), t0}, {live, item("e"), t0}},
			[]func(error) bool{nil, isInvalidInput, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, reg := openGroupDB(t, GroupCommit{MaxRows: len(tt.writes), MaxWait: forever, Workers: 1})
			stored, errs := setConcurrently(t, db, tt.writes)
			if batches, rows := batchStats(t, reg); batches != 1 || rows != len(tt.writes) {
				t.Fatalf("%d batches of %d writes in all, want the writes in 1 batch", batches, rows)
			}
			for i, w := range tt.writes {
				row := storedAttrs(t, testDB, w.scope)[w.item.Name]
				if tt.fails[i] != nil {
					if !tt.fails[i](errs[i]) {
						t.Errorf("write %d: error %v, not the one wanted", i, errs[i])
					}
					if row != nil && row.Value == w.item.Value {
						t.Errorf("write %d failed but was stored", i)
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("write %d: %v, want it stored despite its neighbour's failure", i, errs[i])
					continue
				}
				checkAttrs(t, fmt.Sprintf("write %d", i), stored[i:i+1], created(w.scope, w.now, w.item))
				if row == nil || row.Version != stored[i].Version {
					t.Errorf("write %d: row %+v, want the one returned %+v", i, row, stored[i])
				}
			}
		})
	}
}

func TestGroupCommitConcurrentWrites(t *testing.T) {
	const clients, writesPerClient = 64, 20
	db, reg := openGroupDB(t, GroupCommit{MaxRows: 32, MaxWait: 5 * time.Millisecond, Workers: 4})
	sessionsEnd := attrcache.Now().Add(time.Hour)
	scopes := []attrcache.AttrScope{
		userScope(t), userScope(t), userScope(t),
		sessionScope(t, sessionsEnd), sessionScope(t, sessionsEnd),
	}

	// ack is one acknowledged write: its key, the value written and the version returned.
	type ack struct {
		key     attrKey
		value   string
		version int64
	}
	acks := make([][]ack, clients)
	lastOwn := make([]ack, clients) // the last write of each client to its own key
	var wg sync.WaitGroup
	for client := range clients {
		wg.Go(func() {
			scope := scopes[client%len(scopes)]
			own := fmt.Sprintf("client-%02d", client)
			shared := fmt.Sprintf("shared-%d", client%3)
			for i := range writesPerClient {
				name := own
				if i%2 == 1 {
					name = shared
				}
				value := fmt.Sprintf(`"%d/%d"`, client, i)
				stored, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: name, Value: value}}, attrcache.Now())
				if err != nil {
					t.Errorf("client %d, write %d: %v", client, i, err)
					return
				}
				if got := stored[0]; got.Name != name || got.Value != value {
					t.Errorf("client %d, write %d returned %s = %s, want its own write %s = %s", client, i, got.Name, got.Value, name, value)
				}
				acked := ack{attrKey{scope, name}, value, stored[0].Version}
				if name == own {
					if acked.version <= lastOwn[client].version {
						t.Errorf("client %d, write %d: version %d, want more than its previous write's %d", client, i, acked.version, lastOwn[client].version)
					}
					lastOwn[client] = acked
				}
				acks[client] = append(acks[client], acked)
			}
		})
	}
	wg.Wait()

	// The row of each key is the acknowledged write with the highest version, and for the key of
	// one client, that is its last write.
	latest := make(map[attrKey]ack)
	for _, clientAcks := range acks {
		for _, a := range clientAcks {
			if a.version > latest[a.key].version {
				latest[a.key] = a
			}
		}
	}
	rows := make(map[attrKey]*attrcache.Attr)
	for _, scope := range scopes {
		for name, row := range storedAttrs(t, testDB, scope) {
			rows[attrKey{scope, name}] = row
		}
	}
	if len(rows) != len(latest) {
		t.Errorf("%d rows stored, want one per key written, %d", len(rows), len(latest))
	}
	for key, want := range latest {
		row := rows[key]
		if row == nil || row.Value != want.value || row.Version != want.version {
			t.Errorf("%s: stored %+v, want the last acknowledged write %s (version %d)", key.name, row, want.value, want.version)
		}
	}
	for client, own := range lastOwn {
		if latest[own.key] != own {
			t.Errorf("client %d: the latest write of its own key is %+v, want its last one %+v", client, latest[own.key], own)
		}
	}

	batches, batchedRows := batchStats(t, reg)
	if batchedRows != clients*writesPerClient {
		t.Errorf("%d writes went through group commit, want all %d", batchedRows, clients*writesPerClient)
	}
	if batches == 0 || batchedRows <= batches {
		t.Errorf("%d batches of %d writes in all: want more than one write per batch", batches, batchedRows)
	}
}

func TestGroupCommitCloseFlushesQueuedWrites(t *testing.T) {
	const writes = 20
	db, reg := openGroupDB(t, GroupCommit{MaxRows: writes, MaxWait: 0, Workers: 1})
	release := blockWorker(t, db)
	scope := userScope(t)
	now := attrcache.Now()
	calls := make([]write, writes)
	for i := range calls {
		calls[i] = write{scope, attrcache.AttrWrite{Name: fmt.Sprintf("attr-%02d", i), Value: fmt.Sprint(i)}, now}
	}
	type results struct {
		stored []*attrcache.Attr
		errs   []error
	}
	done := make(chan results, 1)
	go func() {
		stored, errs := setConcurrently(t, db, calls)
		done <- results{stored, errs}
	}()
	waitFor(t, "every write to be queued", func() bool { return queued(db) == writes })

	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	waitFor(t, "Close to stop queueing", func() bool {
		return db.committer.queue.Closed()
	})
	if err := release(); err != nil {
		t.Errorf("the blocked write: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}

	got := <-done
	for i, call := range calls {
		if got.errs[i] != nil {
			t.Errorf("SetAttrs of %s: %v, want it committed by Close", call.item.Name, got.errs[i])
		}
	}
	if stored := storedAttrs(t, testDB, scope); len(stored) != writes {
		t.Errorf("%d attributes stored, want all %d", len(stored), writes)
	}
	if batches, rows := batchStats(t, reg); rows != writes+1 {
		t.Errorf("%d batches of %d writes in all, want the blocked write and %d queued ones", batches, rows, writes)
	}
	if _, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: "late", Value: `1`}}, now); err == nil {
		t.Error("SetAttrs after Close: got nil error, want one")
	}
}

func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	db, _ := openGroupDB(t, GroupCommit{MaxRows: 8, MaxWait: 0, Workers: 1})
	release := blockWorker(t, db)
	scope := userScope(t)
	ctx, cancel := context.WithCancel(t.Context())
	failed := make(chan error, 1)
	go func() {
		_, err := db.SetAttrs(ctx, scope, []attrcache.AttrWrite{{Name: "a", Value: `1`}}, attrcache.Now())
		failed <- err
	}()
	waitFor(t, "the write to be queued", func() bool { return queued(db) == 1 })
	cancel()
	if err := <-failed; !errors.Is(err, context.Canceled) {
		t.Errorf("SetAttrs error = %v, want context.Canceled", err)
	}
	if err := release(); err != nil {
		t.Errorf("the blocked write: %v", err)
	}
	if err := db.Close(); err != nil { // commits whatever is queued
		t.Fatalf("Close: %v", err)
	}
	if stored := storedAttrs(t, testDB, scope); len(stored) != 0 {
		t.Errorf("the cancelled write was stored: %+v", stored)
	}
}

func TestGroupCommitOptions(t *testing.T) {
	tests := []struct {
		name    string
		opt     Option
		wantErr bool
	}{
		{"off", WithGroupCommit(GroupCommit{}), false},
		{"on", WithGroupCommit(GroupCommit{MaxRows: 1, Workers: 1}), false},
		{"negative workers", WithGroupCommit(GroupCommit{MaxRows: 1, Workers: -1}), true},
		{"no rows", WithGroupCommit(GroupCommit{Workers: 1}), true},
		{"more rows than a write may hold", WithGroupCommit(GroupCommit{MaxRows: attrcache.MaxAttrItems + 1, Workers: 1}), true},
		{"negative wait", WithGroupCommit(GroupCommit{MaxRows: 1, MaxWait: -time.Millisecond, Workers: 1}), true},
		{"pool", WithPoolSize(8, 4), false},
		{"no connections", WithPoolSize(0, 0), true},
		{"more idle than open", WithPoolSize(4, 8), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), testDSN, testKeys, tt.opt)
			if err == nil {
				_ = db.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("Open error = %v, want an error: %t", err, tt.wantErr)
			}
		})
	}
}
