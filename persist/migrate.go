package persist

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// migrationFiles holds the schema, one file per version. A file is named NNNN_what.sql and holds
// statements each ending with ';' at the end of a line; lines starting with "--" are comments.
// A file, once released, is never edited: changes go into a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationNameRe is the form of a migration file name; its version is the name without ".sql".
var migrationNameRe = regexp.MustCompile(`^[0-9]{4}_[a-z0-9_]+\.sql$`)

// The migration lock is the one row of schema_migrations_lock, which names its holder and when
// its lease ends: a row, written in committed transactions, is what every node of a Galera
// cluster agrees on (a named lock, GET_LOCK, is one node's own). The holder renews the lease while
// it migrates; a holder that died leaves a lease that ends, and the next process takes it over.
const (
	// migrationLockTimeout bounds how long Migrate waits for another process that is migrating
	// the same database.
	migrationLockTimeout = 2 * time.Minute
	// migrationLease is how long the lock stays taken without a renewal.
	migrationLease = 30 * time.Second
	// migrationLeaseRenewal is how often the holder renews it.
	migrationLeaseRenewal = migrationLease / 3
	// migrationLockPollMax bounds the wait between two tries to take a taken lock.
	migrationLockPollMax = 250 * time.Millisecond
)

// migration is one version of the schema.
type migration struct {
	version    string
	statements []string
}

// Migrate applies, in order, the migrations that the database has not recorded in
// schema_migrations, and returns the versions it applied (none when the schema is current).
// Processes that migrate the same database at once, through one server or different nodes of a
// Galera cluster, take turns under the lock of schema_migrations_lock, each reading what is
// applied once it holds the lock, so each migration is applied once. Versions recorded by a newer
// release are left alone.
func (db *DB) Migrate(ctx context.Context) (applied []string, err error) {
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	lock, err := db.acquireMigrationLock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.release(ctx)
	conn, err := db.db.Conn(ctx) // released before the lock
	if err != nil {
		return nil, fmt.Errorf("persist: migrate: %w", mapError(err))
	}
	defer conn.Close()

	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return applied, err
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// loadMigrations reads and orders the migration files of fsys.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("persist: migrations: %w", err)
	}
	slices.Sort(names)
	migrations := make([]migration, 0, len(names))
	seenNumbers := make(map[string]string)
	for _, name := range names {
		base := path.Base(name)
		if !migrationNameRe.MatchString(base) {
			return nil, fmt.Errorf("persist: migration %s: the name is not NNNN_what.sql", base)
		}
		number := base[:4]
		if other, dup := seenNumbers[number]; dup {
			return nil, fmt.Errorf("persist: migrations %s and %s have the same number", other, base)
		}
		seenNumbers[number] = base
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("persist: migration %s: %w", base, err)
		}
		statements := splitStatements(string(text))
		if len(statements) == 0 {
			return nil, fmt.Errorf("persist: migration %s holds no statement", base)
		}
		migrations = append(migrations, migration{version: strings.TrimSuffix(base, ".sql"), statements: statements})
	}
	return migrations, nil
}

// splitStatements cuts a migration file into statements: comment lines are dropped, and each
// statement ends with a line ending in ';'.
func splitStatements(text string) []string {
	var statements []string
	var current strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		current.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			statements = append(statements, strings.TrimSuffix(strings.TrimSpace(current.String()), ";"))
			current.Reset()
		}
	}
	if rest := strings.TrimSpace(current.String()); rest != "" {
		statements = append(statements, rest)
	}
	return statements
}

// migrationLock is the migration lock as its holder holds it: renewed until released.
type migrationLock struct {
	db    *sql.DB
	owner string
	stop  chan struct{}
	done  chan struct{}
}

// acquireMigrationLock creates schema_migrations_lock if needed and takes its lock, waiting for
// another holder at most migrationLockTimeout. The lease is renewed until release.
func (db *DB) acquireMigrationLock(ctx context.Context) (*migrationLock, error) {
	const createStmt = `CREATE TABLE IF NOT EXISTS schema_migrations_lock (
		id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
		owner CHAR(32) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
		expires_at DATETIME(6) NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin`
	err := retryDeadlocks(ctx, func() error {
		_, err := db.db.ExecContext(ctx, createStmt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: migrate: create schema_migrations_lock: %w", mapError(err))
	}
	var ownerBits [16]byte
	_, _ = crand.Read(ownerBits[:]) // never fails
	lock := &migrationLock{db: db.db, owner: hex.EncodeToString(ownerBits[:]), stop: make(chan struct{}), done: make(chan struct{})}
	giveUp := time.Now().Add(migrationLockTimeout)
	for {
		taken, err := lock.tryTake(ctx)
		if err != nil && !isRetryable(err) {
			return nil, fmt.Errorf("persist: migrate: take lock: %w", mapError(err))
		}
		if taken {
			go lock.renew()
			return lock, nil
		}
		wait := migrationLockPollMax/4 + rand.N(migrationLockPollMax*3/4)
		if time.Now().Add(wait).After(giveUp) {
			return nil, fmt.Errorf("persist: migrate: another process held the migration lock for more than %s", migrationLockTimeout)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("persist: migrate: take lock: %w", mapError(ctx.Err()))
		case <-timer.C:
		}
	}
}

// tryTake takes the lock, in a transaction of its own, when no one holds it or its holder's
// lease has ended, and reports whether it did. Of two processes that try at once (on one server,
// or on two Galera nodes, where the second to commit fails certification), one takes it.
func (l *migrationLock) tryTake(ctx context.Context) (bool, error) {
	// The assignments run in order: expires_at is set when owner now names this process.
	res, err := l.db.ExecContext(ctx, `INSERT INTO schema_migrations_lock (id, owner, expires_at)
		VALUES (1, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
		ON DUPLICATE KEY UPDATE
			owner = IF(expires_at < UTC_TIMESTAMP(6), VALUES(owner), owner),
			expires_at = IF(owner = VALUES(owner), VALUES(expires_at), expires_at)`,
		l.owner, migrationLease.Microseconds())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err == nil && n > 0, err // 1: inserted, 2: taken over, 0: held by another
}

// renew extends the lease every migrationLeaseRenewal until release stops it. A renewal that
// fails is tried again at the next tick; the lease outlasts two that fail.
func (l *migrationLock) renew() {
	defer close(l.done)
	ticker := time.NewTicker(migrationLeaseRenewal)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), migrationLeaseRenewal)
			_, _ = l.db.ExecContext(ctx, `UPDATE schema_migrations_lock
				SET expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE id = 1 AND owner = ?`,
				migrationLease.Microseconds(), l.owner)
			cancel()
		}
	}
}

// release stops the renewals and removes the lock if this process still holds it. If that
// fails, the lease ends within migrationLease and the next process takes the lock over.
func (l *migrationLock) release(ctx context.Context) {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = retryDeadlocks(ctx, func() error {
		_, err := l.db.ExecContext(ctx, "DELETE FROM schema_migrations_lock WHERE id = 1 AND owner = ?", l.owner)
		return err
	})
}

// appliedVersions creates schema_migrations if needed and returns the versions it records.
func appliedVersions(ctx context.Context, conn *sql.Conn) (map[string]bool, error) {
	const createStmt = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version VARCHAR(191) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL PRIMARY KEY,
		applied_at DATETIME(6) NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin`
	if _, err := conn.ExecContext(ctx, createStmt); err != nil {
		return nil, fmt.Errorf("persist: migrate: create schema_migrations: %w", mapError(err))
	}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("persist: migrate: read schema_migrations: %w", mapError(err))
	}
	defer rows.Close()
	done := make(map[string]bool)
	for rows.Next() {
		var version string
		if err := rows.Scan(&version); err != nil {
			return nil, fmt.Errorf("persist: migrate: read schema_migrations: %w", mapError(err))
		}
		done[version] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persist: migrate: read schema_migrations: %w", mapError(err))
	}
	return done, nil
}

// applyMigration runs the statements of m and records its version. MySQL commits DDL
// statements one by one, so a migration that fails half-way is not recorded and stays pending;
// its statements are written to be run again (CREATE TABLE IF NOT EXISTS, ...).
func applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	for i, stmt := range m.statements {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("persist: migration %s, statement %d: %w", m.version, i+1, mapError(err))
		}
	}
	_, err := conn.ExecContext(ctx,
		"INSERT INTO schema_migrations (version, applied_at) VALUES (?, UTC_TIMESTAMP(6))", m.version)
	if err != nil {
		return fmt.Errorf("persist: migration %s: record: %w", m.version, mapError(err))
	}
	return nil
}
