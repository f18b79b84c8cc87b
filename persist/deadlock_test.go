package persist

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
		if !isDeadlock(err) && number == errDeadlock {
			t.Errorf("a mapped deadlock is no longer recognised as one")
		}
	}
}
