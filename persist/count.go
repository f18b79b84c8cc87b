package persist

import (
	"context"
	"fmt"
	"time"
)

// CountLiveSessions returns how many sessions, of every user, have not expired at now.
func (db *DB) CountLiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_session WHERE expiration_time > ?", now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("persist: count live sessions: %w", mapError(err))
	}
	return n, nil
}
