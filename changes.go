package attrcache

import (
	"context"
	"sync"
	"time"
)

// ChangeKind says what kind of cached copy a Change touches.
type ChangeKind byte

// The kinds of Change.
const (
	ChangeAttr      ChangeKind = 'a' // an attribute (Session "" for a user attribute)
	ChangePrincipal ChangeKind = 'u' // a user's Principal
	ChangeSession   ChangeKind = 's' // a session
)

// ChangeOp says what a committed write did to what a Change names.
type ChangeOp byte

// The ops of Change.
const (
	// ChangeSet: the row now has Version (or a newer one).
	ChangeSet ChangeOp = 's'
	// ChangeDelete: an attribute was deleted; Version is its tombstone's, above every version
	// the row had, and a later write of the name gets a higher one.
	ChangeDelete ChangeOp = 'd'
	// ChangeGone: the user or session, or an attribute with them, is gone for good. An
	// attribute's carries the version it had, and ExpiresAt when it had already stopped being
	// visible (its expiry, or its session's end).
	ChangeGone ChangeOp = 'x'
)

// Change is one entry of the change log: a row that a committed write changed and that a cache
// may hold a copy of. It never carries values.
type Change struct {
	Kind    ChangeKind
	Op      ChangeOp
	UserID  string
	Session SessionHash // a session attribute's or a ChangeSession's; "" otherwise
	Name    string      // an attribute's
	Version int64       // ChangeSet and ChangeDelete, and an attribute's ChangeGone
	// ExpiresAt is a set attribute's expiration time (NeverExpires for never); for a gone
	// attribute, when it had stopped being visible, if it had; else zero.
	ExpiresAt time.Time
	// CID is the cid of the call that made the change, "" when the log row's applies.
	CID string
}

type cidKey struct{}

// WithCID returns ctx carrying the cid of the call it serves, which the change log records with
// the changes the call makes.
func WithCID(ctx context.Context, cid string) context.Context {
	return context.WithValue(ctx, cidKey{}, cid)
}

// CIDOf returns the cid ctx carries ("" for none).
func CIDOf(ctx context.Context) string {
	cid, _ := ctx.Value(cidKey{}).(string)
	return cid
}

// ChangeBatch is one row of the change log: a transaction's entries, or part of them.
type ChangeBatch struct {
	ID      int64 // grows with every row logged, in the order they were logged
	Time    time.Time
	Changes []Change
}

// ChangeLog is the durable record of committed changes that caches must see. Every write that
// changes a cached row logs its Changes in its own transaction, with a pending mark that stays
// until some instance has applied them to the cache.
type ChangeLog interface {
	// PendingChanges returns at most limit batches still marked pending that were committed at
	// least grace ago, oldest first.
	PendingChanges(ctx context.Context, grace time.Duration, limit int) ([]ChangeBatch, error)
	// ForgetPending removes the pending marks of the batches with these IDs.
	ForgetPending(ctx context.Context, ids []int64) error
	// ChangesSince returns at most limit batches logged at since or later with an ID above
	// afterID, in ID order.
	ChangesSince(ctx context.Context, since time.Time, afterID int64, limit int) ([]ChangeBatch, error)
	// PurgeChanges deletes at most limit batches logged before before, and returns how many.
	PurgeChanges(ctx context.Context, before time.Time, limit int) (int, error)
}

// ChangeReceipt gathers the pending marks that a store's writes under one context left in the
// change log, so that a cache that has stored those writes can let the log drop them. It is safe
// for concurrent use.
type ChangeReceipt struct {
	mu    sync.Mutex
	marks []func()
}

type changeReceiptKey struct{}

// WithChangeReceipt returns ctx carrying a new, empty receipt, and the receipt.
func WithChangeReceipt(ctx context.Context) (context.Context, *ChangeReceipt) {
	r := &ChangeReceipt{}
	return context.WithValue(ctx, changeReceiptKey{}, r), r
}

// NoteChangeLogged records on ctx's receipt, when it carries one, that a committed write left a
// pending mark, which applied drops. Without a receipt the mark stays for the relay.
func NoteChangeLogged(ctx context.Context, applied func()) {
	r, _ := ctx.Value(changeReceiptKey{}).(*ChangeReceipt)
	if r == nil {
		return
	}
	r.mu.Lock()
	r.marks = append(r.marks, applied)
	r.mu.Unlock()
}

// Applied tells the log that the cache holds every change noted on the receipt so far.
func (r *ChangeReceipt) Applied() {
	r.mu.Lock()
	marks := r.marks
	r.marks = nil
	r.mu.Unlock()
	for _, applied := range marks {
		applied()
	}
}
