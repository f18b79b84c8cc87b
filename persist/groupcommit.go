package persist

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/queue"
	"github.com/attrcache/attrcache/metrics"
)

// Group commit: SetAttrs calls of one attribute are queued; a worker commits a batch of them in
// one transaction (setAttrRows) and only then hands each caller its own row. A batch never holds
// two calls of one key: the second starts the next batch, so the one queued first commits first.
// A batch that fails for a reason that may be one row's runs each call again alone (each gets its
// own error); an unreachable database, or a conflict that outlasted the retries, fails them all.

// errCommitterClosed says that the committer no longer takes writes: the caller writes alone.
var errCommitterClosed = errors.New("group commit is closed")

// The states of a queued request: a worker takes it into a batch, or its caller abandons it
// while it waits in the queue; whichever comes first decides.
const (
	requestQueued int32 = iota
	requestTaken
	requestAbandoned
)

// attrRequest is one queued SetAttrs call of one attribute.
type attrRequest struct {
	ctx     context.Context
	row     attrRow
	arrived time.Time
	state   atomic.Int32
	// done receives the result once, when the request was taken into a batch.
	done chan attrResult
}

// groupCommitter runs the workers of group commit.
type groupCommitter struct {
	db      *DB
	cfg     GroupCommit
	metrics *metrics.Metrics
	queue   *queue.Closable[*attrRequest]
}

// startGroupCommitter starts cfg.Workers workers that commit batches of writes in db, recording
// on m (nil: nowhere).
func startGroupCommitter(db *DB, cfg GroupCommit, m *metrics.Metrics) *groupCommitter {
	c := &groupCommitter{db: db, cfg: cfg, metrics: m}
	c.queue = queue.New(cfg.Workers*cfg.MaxRows, cfg.Workers, c.work)
	return c
}

// set queues row and returns it as stored once its batch has committed, or its own error.
// errCommitterClosed means that it was not queued. When ctx ends while the write waits in the
// queue, it is dropped and ctx's error returned; once its batch has started, set waits for its
// result, so that what it returns is what happened.
func (c *groupCommitter) set(ctx context.Context, row attrRow) (*attrcache.Attr, error) {
	req := &attrRequest{ctx: ctx, row: row, arrived: time.Now(), done: make(chan attrResult, 1)}
	if err := c.enqueue(ctx, req); err != nil {
		return nil, err
	}
	select {
	case res := <-req.done:
		return res.stored, res.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(requestQueued, requestAbandoned) {
			return nil, fmt.Errorf("waiting for group commit: %w", mapError(ctx.Err()))
		}
		res := <-req.done
		return res.stored, res.err
	}
}

// enqueue puts req on the queue, unless the committer is closed (errCommitterClosed) or ctx
// ends first.
func (c *groupCommitter) enqueue(ctx context.Context, req *attrRequest) error {
	err := c.queue.Put(ctx, req)
	switch {
	case errors.Is(err, queue.ErrClosed):
		return errCommitterClosed
	case err != nil:
		return fmt.Errorf("queueing for group commit: %w", mapError(err))
	}
	return nil
}

// close stops queueing, waits until the workers have committed every queued request, and
// returns. Calling it again does nothing.
func (c *groupCommitter) close() { c.queue.Close() }

// work commits batches of requests until it is closed and empty.
func (c *groupCommitter) work(requests <-chan *attrRequest) {
	var next *attrRequest // the request that closed the last batch, first of the next
	for {
		first := next
		if first == nil {
			var open bool
			if first, open = <-requests; !open {
				return
			}
		}
		var batch []*attrRequest
		batch, next = c.collect(requests, first)
		c.commit(batch)
	}
}

// collect returns the batch that starts with first: the requests that follow it on requests,
// until the batch is full, MaxWait has passed since first arrived (or, with MaxWait 0, the queue
// is empty), or the queue is closed. A request of a key already in the batch closes it and is
// returned as next, to start the next batch.
func (c *groupCommitter) collect(requests <-chan *attrRequest, first *attrRequest) (batch []*attrRequest, next *attrRequest) {
	batch = append(make([]*attrRequest, 0, c.cfg.MaxRows), first)
	keys := map[attrKey]bool{first.row.key(): true}
	var deadline <-chan time.Time
	for len(batch) < c.cfg.MaxRows {
		var req *attrRequest
		var open bool
		select {
		case req, open = <-requests:
		default:
			if deadline == nil {
				wait := c.cfg.MaxWait - time.Since(first.arrived)
				if wait <= 0 {
					return batch, nil
				}
				timer := time.NewTimer(wait)
				defer timer.Stop() // once: deadline is set once per batch
				deadline = timer.C
			}
			select {
			case req, open = <-requests:
			case <-deadline:
				return batch, nil
			}
		}
		if !open {
			return batch, nil
		}
		if keys[req.row.key()] {
			return batch, req
		}
		keys[req.row.key()] = true
		batch = append(batch, req)
	}
	return batch, nil
}

// commit writes the requests of batch that their callers still wait for, in one transaction,
// and gives each its result. When that transaction fails for a reason that may be one row's,
// each request is written again on its own.
func (c *groupCommitter) commit(batch []*attrRequest) {
	batch = slices.DeleteFunc(batch, func(req *attrRequest) bool {
		return !req.state.CompareAndSwap(requestQueued, requestTaken)
	})
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	for _, req := range batch {
		c.metrics.ObserveBatchWait(start.Sub(req.arrived))
	}
	ctx, cancel := batchContext(batch)
	results, token, err := c.db.setAttrRows(ctx, rowsOfRequests(batch))
	cancel()
	if err != nil {
		err = fmt.Errorf("group commit of %d attributes: %w", len(batch), err)
	} else {
		c.db.noteBatchLogged(batch, results, token)
	}
	c.metrics.ObserveBatch(len(batch), time.Since(start))

	for i, req := range batch {
		switch {
		case err == nil:
			req.done <- results[i]
		case isUnavailable(err):
			req.done <- attrResult{err: err}
		default:
			req.done <- c.db.setAlone(req)
		}
	}
}

// batchContext returns the context of a batch's transaction: it ends at the latest deadline of
// its callers, or never when one has none. The batch does not end with one caller's
// cancellation: its other callers still wait for it.
func batchContext(batch []*attrRequest) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, req := range batch {
		deadline, ok := req.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if deadline.After(latest) {
			latest = deadline
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// isUnavailable reports whether err says that the database could not be reached or used.
func isUnavailable(err error) bool {
	e, ok := errors.AsType[*attrcache.Error](err)
	return ok && e.Kind == attrcache.KindUnavailable
}

// setAlone writes the request in a transaction of its own, as SetAttrs without group commit
// does.
func (db *DB) setAlone(req *attrRequest) attrResult {
	results, token, err := db.setAttrRows(req.ctx, []attrRow{req.row})
	if err != nil {
		return attrResult{err: err}
	}
	if results[0].err == nil {
		db.noteLogged(req.ctx, token)
	}
	return results[0]
}

// rowsOfRequests returns the rows of batch, in its order.
func rowsOfRequests(batch []*attrRequest) []attrRow {
	rows := make([]attrRow, len(batch))
	for i, req := range batch {
		rows[i] = req.row
	}
	return rows
}

// noteBatchLogged notes token (0: none), the log's mark of a committed batch, on the receipts of
// the batch's callers whose rows it stored: it is forgotten once the cache has applied each.
func (db *DB) noteBatchLogged(batch []*attrRequest, results []attrResult, token int64) {
	if token == 0 {
		return
	}
	ctxs := make([]context.Context, 0, len(batch))
	for i, req := range batch {
		if results[i].err == nil {
			ctxs = append(ctxs, req.ctx)
		}
	}
	db.noteLoggedShared(ctxs, token)
}
