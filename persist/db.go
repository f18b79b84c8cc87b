// Package persist keeps attrcache's users, sessions and attributes in MySQL or MariaDB, the
// system of record. It implements attrcache.UserStore, attrcache.SessionStore and
// attrcache.AttrStore, owns the schema as embedded, versioned migrations, and is the only
// package that imports the MySQL driver: driver errors become attrcache.ErrNotFound,
// attrcache.ErrConflict or an attrcache.Unavailable error here and go no further.
//
// E-mail addresses and TOTP keys are sealed with the keyring before they are written and opened
// when they are read. Every date is stored and returned in UTC to the microsecond.
package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
)

// Pool settings. Every request makes a few short statements, so the pool is sized for many
// concurrent requests without exhausting a default MySQL server (max_connections 151) when a
// couple of instances share it. Idle connections are kept up to the same number, so that a burst
// does not open and close connections, and recycled well before MySQL's wait_timeout and the idle
// timeouts of proxies and load balancers in between. WithPoolSize changes the sizes.
const (
	defaultMaxOpenConns = 64
	defaultMaxIdleConns = defaultMaxOpenConns
	connMaxLifetime     = 30 * time.Minute
	connMaxIdleTime     = 5 * time.Minute

	// defaultDialTimeout bounds connecting when the DSN sets no timeout, so that an unreachable
	// server is reported as unavailable instead of hanging until the operating system gives up.
	defaultDialTimeout = 5 * time.Second

	// oneTripAloneConns is how many connections the one-round-trip pool holds besides one per
	// group-commit worker: for writes of user attributes that run alone (SetAttrs of many items).
	oneTripAloneConns = 4
)

// sessionSQLMode is the sql_mode of every connection, whatever the server's default: values
// that do not fit their column and zero dates are errors, never silently truncated or stored.
const sessionSQLMode = "'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"

// DB is the MySQL store. It is safe for concurrent use.
type DB struct {
	db *sql.DB
	// oneTrip is a small pool of connections, set up as db's but accepting several statements in
	// one query, used only for the one-round-trip writes of user attributes (onetrip.go).
	oneTrip *sql.DB
	keys    *attrcache.Keyring
	// maxPacket is the size of the largest statement that both the server (max_allowed_packet)
	// and the driver accept; writes of many attributes are split to stay under it.
	maxPacket int
	// committer batches single-attribute writes of SetAttrs; nil when group commit is off, or a
	// quota is on.
	committer *groupCommitter
	// quota bounds what each user stores; the zero Quota bounds nothing.
	quota Quota
	// forgetter deletes the pending marks of changes the cache has applied (changelog.go).
	forgetter *forgetter
	// noFeed: nothing numbers the change feed, and the purge does not wait for expire events.
	noFeed bool
	// feedWake wakes this instance's sequencer and feed readers (feedwake.go).
	feedWake *feedWake
}

var (
	_ attrcache.UserStore    = (*DB)(nil)
	_ attrcache.SessionStore = (*DB)(nil)
	_ attrcache.AttrStore    = (*DB)(nil)
)

// Open opens a connection pool to the database named in dsn (a go-sql-driver DSN) and pings it.
// Whatever the DSN says, times are exchanged in UTC to the microsecond, parameters are
// interpolated on the client, the session is in strict SQL mode, and connecting times out after
// defaultDialTimeout unless the DSN sets a timeout; on a Galera node every session reads after
// the writes the cluster committed before. keys seals and opens e-mail addresses and TOTP keys.
// opts set the pool size, group commit, a quota, metrics and whether the change feed runs; an option with a bad value is an
// error. A server that cannot be reached gives an attrcache.Unavailable error.
func Open(ctx context.Context, dsn string, keys *attrcache.Keyring, opts ...Option) (*DB, error) {
	if keys == nil {
		return nil, errors.New("persist: open: no keyring")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("persist: open: %w", err)
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, errors.New("persist: open: the DSN names no database")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	if err := cfg.Apply(mysql.TimeTruncate(time.Microsecond)); err != nil {
		return nil, fmt.Errorf("persist: open: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = make(map[string]string)
	}
	cfg.Params["sql_mode"] = sessionSQLMode
	syncWait, onGalera, err := galeraSyncWait(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("persist: open: ping: %w", mapError(err))
	}
	if onGalera {
		cfg.Params["wsrep_sync_wait"] = syncWait
	}

	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("persist: open: %w", err)
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(o.maxOpenConns)
	pool.SetMaxIdleConns(o.maxIdleConns)
	pool.SetConnMaxLifetime(connMaxLifetime)
	pool.SetConnMaxIdleTime(connMaxIdleTime)

	if err := pool.PingContext(ctx); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("persist: open: ping: %w", mapError(err))
	}
	var maxPacket int
	if err := pool.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("persist: open: read max_allowed_packet: %w", mapError(err))
	}
	if cfg.MaxAllowedPacket > 0 { // 0 makes the driver take the server's
		maxPacket = min(maxPacket, cfg.MaxAllowedPacket)
	}
	// The one-trip pool's connections are the main pool's (same server, database, character set,
	// collation, sql_mode and other session variables of the DSN, time handling, interpolation),
	// plus multi-statement queries, which no other connection accepts.
	oneTripCfg := cfg.Clone()
	oneTripCfg.MultiStatements = true
	// The change log's entries of a write (changelog.go) are shorter than the write itself.
	oneTripCfg.Params = maps.Clone(cfg.Params)
	oneTripCfg.Params["group_concat_max_len"] = strconv.Itoa(max(maxPacket, 1<<20))
	oneTripConnector, err := mysql.NewConnector(oneTripCfg)
	if err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("persist: open: %w", err)
	}
	oneTrip := sql.OpenDB(oneTripConnector)
	oneTrip.SetMaxOpenConns(o.groupCommit.Workers + oneTripAloneConns)
	oneTrip.SetMaxIdleConns(o.groupCommit.Workers + oneTripAloneConns)
	oneTrip.SetConnMaxLifetime(connMaxLifetime)
	oneTrip.SetConnMaxIdleTime(connMaxIdleTime)

	db := &DB{db: pool, oneTrip: oneTrip, keys: keys, maxPacket: maxPacket, quota: o.quota, noFeed: o.noFeed,
		feedWake: newFeedWake()}
	db.forgetter = startForgetter(db)
	if o.groupCommit.on() && !o.quota.on() {
		db.committer = startGroupCommitter(db, o.groupCommit, o.metrics)
	}
	return db, nil
}

// galeraSyncWait reports whether the server of cfg is a node of a Galera cluster and, if so,
// returns the wsrep_sync_wait its sessions take: the server's with the READ bit (1) set, so that a
// read, and the start of a transaction, first wait until the node has applied every write the
// cluster committed before it. An instance then reads what another, on another node, wrote and
// acknowledged. The error is that of a server that cannot be reached; one that does not know
// Galera's variables is one without Galera.
func galeraSyncWait(ctx context.Context, cfg *mysql.Config) (syncWait string, onGalera bool, err error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", false, err
	}
	probe := sql.OpenDB(connector)
	defer probe.Close()
	if err := probe.PingContext(ctx); err != nil {
		return "", false, err
	}
	var on bool
	var global int64
	err = probe.QueryRowContext(ctx, "SELECT @@global.wsrep_on, @@global.wsrep_sync_wait").Scan(&on, &global)
	if err != nil || !on {
		return "", false, nil
	}
	return strconv.FormatInt(global|1, 10), true, nil
}

// EnsureDatabase creates the database named in dsn, with the utf8mb4 character set and the
// utf8mb4_nopad_bin collation (byte for byte), unless it exists. It connects without selecting a database, so it works
// before the database exists. A server that cannot be reached gives an attrcache.Unavailable
// error.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	name := cfg.DBName
	if name == "" {
		return errors.New("persist: ensure database: the DSN names no database")
	}
	cfg.DBName = ""
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("persist: ensure database: %w", err)
	}
	server := sql.OpenDB(connector)
	defer server.Close()
	stmt := "CREATE DATABASE IF NOT EXISTS " + quoteIdentifier(name) +
		" CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
	if _, err := server.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("persist: ensure database %s: %w", name, mapError(err))
	}
	return nil
}

// parseDSN reads dsn and gives it the default dial timeout when it sets none.
func parseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message may quote the DSN, and with it the password.
		return nil, errors.New("persist: the MySQL DSN is malformed")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	return cfg, nil
}

// quoteIdentifier quotes a MySQL identifier (a database name) with backticks.
func quoteIdentifier(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// Close closes the pools. With group commit on, it first stops queueing writes (later ones run
// in transactions of their own, which fail once the pools are closed) and commits every write
// already queued, returning once their callers have their results.
func (db *DB) Close() error {
	if db.committer != nil {
		db.committer.close()
	}
	db.forgetter.close()
	return errors.Join(db.oneTrip.Close(), db.db.Close())
}

// Ping checks that the server answers; a server that cannot be reached gives an
// attrcache.Unavailable error.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.db.PingContext(ctx); err != nil {
		return fmt.Errorf("persist: ping: %w", mapError(err))
	}
	return nil
}

// SQL returns the underlying pool, for pool statistics and for tests that inspect stored rows.
func (db *DB) SQL() *sql.DB { return db.db }

// readOnly is the option of transactions that only read, so that their queries see one snapshot.
var readOnly = &sql.TxOptions{ReadOnly: true}

// inTx runs fn in a transaction with opts (nil: read-write) and commits it, or rolls it back if
// fn fails. Errors of fn are returned as they are; failures to begin or commit are mapped with
// mapError.
func (db *DB) inTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", mapError(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// Retries of transactions the server rolled back for a reason that passes (isRetryable). A
// request's context bounds them; retryBudget bounds those of a context without a deadline (an
// HTTP request has none), so that a storm of deadlocks still ends in an error.
const (
	retryBudget = 10 * time.Second
	// retryBackoffMax bounds the wait before one attempt: the losers of a conflict wait a random
	// 1 ms to 2^n ms (n attempts made), at most this, so that they do not meet again in step.
	retryBackoffMax = 64 * time.Millisecond
)

// inWriteTx runs fn in a read-write transaction as inTx does and, while the server rolls the
// transaction back for a reason that passes (a deadlock, a Galera certification conflict: see
// isRetryable), runs fn again in a new one, as retryDeadlocks says. fn must be safe to run again:
// it starts from scratch in each transaction.
func (db *DB) inWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return retryDeadlocks(ctx, func() error { return db.inTx(ctx, nil, fn) })
}

// retryDeadlocks runs attempt, a transaction, and runs it again while it fails for a reason that
// passes (isRetryable), until ctx's deadline, or for retryBudget when ctx has none, or until ctx
// ends; it returns the last attempt's error. Before each new attempt it waits a random 1 to 2^n
// ms (n attempts made, at most retryBackoffMax), and it makes none that the wait would start
// after the deadline. Two transactions meet in a deadlock on one server (neighbouring keys'
// gaps), and in a certification conflict on a Galera cluster (writes of one key on two nodes,
// which only one of them may commit).
func retryDeadlocks(ctx context.Context, attempt func() error) error {
	giveUp, ok := ctx.Deadline()
	if !ok {
		giveUp = time.Now().Add(retryBudget)
	}
	for n := 1; ; n++ {
		err := attempt()
		if !isRetryable(err) || ctx.Err() != nil {
			return err
		}
		wait := time.Duration(1+rand.Int64N(int64(min(retryBackoffMax, time.Millisecond<<min(n, 16))/time.Millisecond))) * time.Millisecond
		if time.Now().Add(wait).After(giveUp) {
			return err
		}
		backoff := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			backoff.Stop()
			return err
		case <-backoff.C:
		}
	}
}
