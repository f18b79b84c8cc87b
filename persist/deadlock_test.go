package persist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
)

// Concurrent many-item writes of new users, whose rows are neighbours in the primary key, can
// deadlock on the gaps between them; the retries see every one through.
func TestManyItemWritesOfNeighbouringUsersAllCommit(t *testing.T) {
	ctx := context.Background()
	const rounds, writers = 10, 16
	for round := range rounds {
		users := make([]*attrcache.User, writers)
		for w := range users {
			users[w] = createUser(t, testDB, newUser())
		}
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w, u := range users {
			wg.Go(func() {
				items := make([]attrcache.AttrWrite, 100)
				for i := range items {
					items[i] = attrcache.AttrWrite{Name: fmt.Sprintf("neighbour-%03d", i), Value: `"v"`}
				}
				_, errs[w] = testDB.SetAttrs(ctx, attrcache.AttrScope{UserID: u.UserID}, items, attrcache.Now())
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d, writer %d: %v", round, w, err)
			}
			if got := len(attrNames(t, testDB, users[w].UserID, "")); got != 100 {
				t.Fatalf("round %d, writer %d: %d rows stored, want 100", round, w, got)
			}
		}
	}
}

// A deadlock or a lock wait that outlasted the retries is a backend that could not serve the
// request now (503), not a bug.
func TestLockFailuresAreUnavailable(t *testing.T) {
	for _, number := range []uint16{errDeadlock, errLockWaitTimeout} {
		err := mapError(&mysql.MySQLError{Number: number, Message: "test"})
		if e, ok := err.(*attrcache.Error); !ok || e.Kind != attrcache.KindUnavailable {
			t.Errorf("error %d mapped to %v, want a KindUnavailable error", number, err)
		}
		if !isRetryable(err) {
			t.Errorf("a mapped error %d is no longer recognised as retryable", number)
		}
	}
}

// Which errors retryDeadlocks runs a transaction again for: the rollbacks that pass, and a Galera
// node that is joining; never an error of the request itself.
func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"deadlock or certification conflict", &mysql.MySQLError{Number: errDeadlock, Message: "Deadlock found when trying to get lock; try restarting transaction"}, true},
		{"lock wait timeout", &mysql.MySQLError{Number: errLockWaitTimeout, Message: "Lock wait timeout exceeded"}, true},
		{"mapped deadlock", mapError(&mysql.MySQLError{Number: errDeadlock}), true},
		{"galera node joining", &mysql.MySQLError{Number: errUnknownCommand, Message: "WSREP has not yet prepared node for application use"}, true},
		{"mapped galera node joining", mapError(&mysql.MySQLError{Number: errUnknownCommand, Message: "WSREP has not yet prepared node for application use"}), true},
		{"unknown command", &mysql.MySQLError{Number: errUnknownCommand, Message: "Unknown command"}, false},
		{"duplicate key", &mysql.MySQLError{Number: errDuplicateKey}, false},
		{"value too long", mapError(&mysql.MySQLError{Number: errDataTooLong}), false},
		{"connection refused", mapError(context.DeadlineExceeded), false},
		{"not a driver error", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := isRetryable(tt.err); got != tt.want {
			t.Errorf("%s: isRetryable = %v, want %v", tt.name, got, tt.want)
		}
	}
	if err := mapError(&mysql.MySQLError{Number: errUnknownCommand, Message: "WSREP has not yet prepared node for application use"}); !isUnavailable(err) {
		t.Errorf("a Galera node that is joining maps to %v, want a KindUnavailable error", err)
	}
}

// A transaction that keeps losing conflicts (hot keys written on two Galera nodes) runs again until
// it commits, however many attempts that takes within the deadline; one that keeps losing
// (a deadlock storm) ends at the deadline with the retryable error, a 503 for the client.
func TestRetryDeadlocksUntilTheDeadline(t *testing.T) {
	conflict := mapError(&mysql.MySQLError{Number: errDeadlock, Message: "Deadlock found when trying to get lock; try restarting transaction"})
	t.Run("conflicts that pass", func(t *testing.T) {
		const losses = 40
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		attempts := 0
		err := retryDeadlocks(ctx, func() error {
			attempts++
			if attempts <= losses {
				return conflict
			}
			return nil
		})
		if err != nil || attempts != losses+1 {
			t.Errorf("retryDeadlocks = %v after %d attempts, want nil after %d", err, attempts, losses+1)
		}
	})
	t.Run("a storm", func(t *testing.T) {
		const deadline = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		attempts := 0
		err := retryDeadlocks(ctx, func() error { attempts++; return conflict })
		if !isUnavailable(err) || !isRetryable(err) {
			t.Errorf("retryDeadlocks = %v, want the conflict, a KindUnavailable error", err)
		}
		if attempts < 5 {
			t.Errorf("%d attempts within %v, want them to go on until the deadline", attempts, deadline)
		}
		end, _ := ctx.Deadline()
		if late := time.Since(end); late > time.Second {
			t.Errorf("retryDeadlocks returned %v after the deadline, want it to stop there", late)
		}
	})
	t.Run("an error of the request", func(t *testing.T) {
		attempts := 0
		taken := mapError(&mysql.MySQLError{Number: errDuplicateKey})
		err := retryDeadlocks(context.Background(), func() error { attempts++; return taken })
		if !errors.Is(err, attrcache.ErrConflict) || attempts != 1 {
			t.Errorf("retryDeadlocks = %v after %d attempts, want ErrConflict after 1", err, attempts)
		}
	})
}
