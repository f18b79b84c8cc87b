package attrcache

import (
	"context"
	"time"
)

// FeedOp is what a change feed event says happened to an attribute (CONTRACT.md §10).
type FeedOp string

// The ops of FeedEvent.
const (
	FeedSet    FeedOp = "set"
	FeedDelete FeedOp = "delete"
	FeedExpire FeedOp = "expire"
)

// FeedEvent is one event of the change feed: an attribute set, deleted or expired. It never
// carries a value.
type FeedEvent struct {
	// Seq numbers the events in the order the feed hands them out: positive, one above the
	// event before it, and never taken by an event that becomes visible later.
	Seq     int64
	Op      FeedOp
	UserID  string
	Session SessionHash // "" for a user attribute
	Name    string
	// Version is the attribute's version that was set or expired, or its deletion's tombstone:
	// one above its last version for an attribute deleted with its user or session.
	Version int64
	// Time is when the change was committed, or an expire event's expiration time.
	Time time.Time
	CID  string
}

// ChangeFeed reads the change feed.
type ChangeFeed interface {
	// FeedBounds returns the lowest Seq still kept (0 when none is) and the highest Seq handed
	// out so far (0 when none was).
	FeedBounds(ctx context.Context) (oldest, last int64, err error)
	// FeedEvents returns at most limit events with after < Seq <= upTo, of userID ("": every
	// user's), in Seq order, and readTo: every event up to it has been looked at (upTo unless
	// the call stopped at limit events or at a bound of its own).
	FeedEvents(ctx context.Context, userID string, after, upTo int64, limit int) (events []FeedEvent, readTo int64, err error)
}
