package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
)

// MySQL server error numbers that mapError gives a meaning to.
const (
	errDuplicateKey       = 1062 // ER_DUP_ENTRY: a unique key is taken
	errNoReferencedRow    = 1452 // ER_NO_REFERENCED_ROW_2: a foreign key names a missing row
	errTooManyConnections = 1040 // ER_CON_COUNT_ERROR
	errDBAccessDenied     = 1044 // ER_DBACCESS_DENIED_ERROR
	errAccessDenied       = 1045 // ER_ACCESS_DENIED_ERROR
	errUnknownDatabase    = 1049 // ER_BAD_DB_ERROR
	errServerShutdown     = 1053 // ER_SERVER_SHUTDOWN
	errConnectionKilled   = 1927 // MariaDB ER_CONNECTION_KILLED
	errDeadlock           = 1213 // ER_LOCK_DEADLOCK: the transaction was rolled back
	errLockWaitTimeout    = 1205 // ER_LOCK_WAIT_TIMEOUT: a statement waited too long for a lock
	errUnknownCommand     = 1047 // ER_UNKNOWN_COM_ERROR: also Galera's "WSREP has not yet prepared node"
	errDataTooLong        = 1406 // ER_DATA_TOO_LONG: a value does not fit its column (strict mode)
	errTruncatedValue     = 1292 // ER_TRUNCATED_WRONG_VALUE: e.g. a date outside DATETIME's range
	errIncorrectString    = 1366 // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: a value the column cannot hold
	errOutOfRange         = 1264 // ER_WARN_DATA_OUT_OF_RANGE
)

// mapError turns a driver or database/sql error into the domain's: no row becomes
// attrcache.ErrNotFound, a taken unique key attrcache.ErrConflict, a foreign key naming a
// missing user attrcache.ErrNotFound, and a server that cannot be reached or used (refused or
// broken connection, timeout, refused login, unknown database, shutdown) an
// attrcache.Unavailable error, and a value the column cannot hold (too long, a date out of range)
// an E008002 input error, since only client input can be that large. Any other error is returned
// as it is. The driver's messages are
// not kept for conflicts, since they quote the duplicate value.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return attrcache.ErrNotFound
	}
	if myErr, ok := errors.AsType[*mysql.MySQLError](err); ok {
		switch myErr.Number {
		case errDuplicateKey:
			return attrcache.ErrConflict
		case errNoReferencedRow:
			return attrcache.ErrNotFound
		case errTooManyConnections, errDBAccessDenied, errAccessDenied, errUnknownDatabase,
			errServerShutdown, errConnectionKilled:
			return attrcache.Unavailable(err)
		case errDeadlock, errLockWaitTimeout:
			// The server gave up on the transaction to let others through: another attempt
			// may succeed (retryDeadlocks makes them until the deadline), which is what a 503
			// asks of a client.
			return attrcache.Unavailable(err)
		case errUnknownCommand:
			if isNodeNotReady(myErr) {
				return attrcache.Unavailable(err)
			}
		case errDataTooLong, errTruncatedValue, errIncorrectString, errOutOfRange:
			return attrcache.InvalidInput("a value is too long or out of range for where it is stored")
		}
		return err
	}
	if isConnectionFailure(err) {
		return attrcache.Unavailable(err)
	}
	return err
}

// isConnectionFailure reports whether err says that a connection could not be made or broke.
func isConnectionFailure(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// isRetryable reports whether err says that the server rolled the transaction back, or would not
// run it, for a reason that passes, so that running the transaction again may succeed: InnoDB
// broke a deadlock with it, or a Galera cluster refused to commit it because a write of another
// node committed first (certification, reported as a deadlock); a statement waited too long for
// a lock; a Galera node that is joining its cluster does not serve yet.
func isRetryable(err error) bool {
	myErr, ok := errors.AsType[*mysql.MySQLError](err)
	if !ok {
		return false
	}
	switch myErr.Number {
	case errDeadlock, errLockWaitTimeout:
		return true
	case errUnknownCommand:
		return isNodeNotReady(myErr)
	}
	return false
}

// isNodeNotReady reports whether myErr is Galera's refusal of a node that is not (or no longer)
// part of a primary component: "WSREP has not yet prepared node for application use".
func isNodeNotReady(myErr *mysql.MySQLError) bool {
	return myErr.Number == errUnknownCommand && strings.HasPrefix(myErr.Message, "WSREP")
}
