package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
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

// migrationLockTimeout bounds how long Migrate waits for another process that is migrating the
// same database.
const migrationLockTimeout = 2 * time.Minute

// migration is one version of the schema.
type migration struct {
	version    string
	statements []string
}

// Migrate applies, in order, the migrations that the database has not recorded in
// schema_migrations, and returns the versions it applied (none when the schema is current).
// Processes that migrate the same database at once take turns under a named lock, so each
// migration is applied once. Versions recorded by a newer release are left alone.
func (db *DB) Migrate(ctx context.Context) (applied []string, err error) {
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("persist: migrate: %w", mapError(err))
	}
	defer conn.Close()

	lockName, err := acquireMigrationLock(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer releaseMigrationLock(ctx, conn, lockName)

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

// acquireMigrationLock takes the named lock of this database on conn, waiting for another
// holder at most migrationLockTimeout, and returns the lock's name.
func acquireMigrationLock(ctx context.Context, conn *sql.Conn) (string, error) {
	var lockName string
	if err := conn.QueryRowContext(ctx, "SELECT CONCAT('attrcache.migrate.', DATABASE())").Scan(&lockName); err != nil {
		return "", fmt.Errorf("persist: migrate: %w", mapError(err))
	}
	var got sql.NullInt64
	err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", lockName, int(migrationLockTimeout/time.Second)).Scan(&got)
	if err != nil {
		return "", fmt.Errorf("persist: migrate: take lock: %w", mapError(err))
	}
	if got.Int64 != 1 {
		return "", fmt.Errorf("persist: migrate: another process held the migration lock for more than %s", migrationLockTimeout)
	}
	return lockName, nil
}

// releaseMigrationLock releases the lock taken by acquireMigrationLock. If that fails, conn is
// discarded instead of going back to the pool: ending its session releases the lock.
func releaseMigrationLock(ctx context.Context, conn *sql.Conn, lockName string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", lockName); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
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
