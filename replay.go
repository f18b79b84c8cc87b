package attrcache

import (
	"context"
	"time"
)

// ChangeReplayer re-applies recently committed changes to the cache, for repairing a Redis
// master that may lack them (a promoted replica that missed the last writes of the master it
// replaced, or a master restarted without them).
type ChangeReplayer interface {
	// ReplayChanges applies to the cache again, version-guarded as every cache write is, each
	// change committed at or after since (the database's clock) to a user for whom users
	// reports true, deletions included, and returns once all are applied. Applying a change the
	// cache already holds changes nothing. An error means some may not have been applied.
	ReplayChanges(ctx context.Context, since time.Time, users func(userID string) bool) error
}
