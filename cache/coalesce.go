package cache

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/internal/queue"
	"github.com/attrcache/attrcache/metrics"
)

// Coalescing: a caller hands its Redis commands to the coalescer and waits; a sender takes them
// with every other call waiting at that moment, up to maxCoalescedCmds commands, and sends them
// in one pipeline, each caller's in order. A call that finds the senders idle goes at once,
// alone, so coalescing adds no wait of its own. With a Cluster client the pipeline is split by
// node, as any pipeline is.

// DefaultCoalescers is the number of pipelines the coalescer keeps in flight when
// Options.Coalescers is 0. One carries more calls per pipeline than several would, so there are
// fewer system calls on both sides (README's Performance section has the figures).
const DefaultCoalescers = 1

// maxCoalescedCmds bounds the commands of one coalesced pipeline, so that one round trip does not
// grow without end under load; a pipeline holds at least one call, whatever its size. It also
// sizes the queue of waiting calls: a caller blocks handing over its call only when that many
// wait already.
const maxCoalescedCmds = 512

// coalescedCall is one caller's commands.
type coalescedCall struct {
	ctx  context.Context
	cmds []redis.Cmder
	done chan struct{} // closed once every command has its result
}

// coalescer sends concurrent callers' commands in shared pipelines.
type coalescer struct {
	rdb     redis.UniversalClient
	metrics *metrics.Metrics
	calls   *queue.Closable[*coalescedCall]
}

// newCoalescer starts senders goroutines sending pipelines on rdb, recording them on m (nil:
// nowhere); close stops them.
func newCoalescer(rdb redis.UniversalClient, senders int, m *metrics.Metrics) *coalescer {
	c := &coalescer{rdb: rdb, metrics: m}
	c.calls = queue.New(maxCoalescedCmds, senders, c.send)
	return c
}

// do sends cmds in one pipeline, possibly shared with other callers', and returns once each has
// its result (or ctx ends: the commands may then still be sent). It returns the first command's
// error, as a pipeline's Exec does; each command holds its own. Once the coalescer is closed,
// the caller sends its commands itself.
func (c *coalescer) do(ctx context.Context, cmds ...redis.Cmder) error {
	call := &coalescedCall{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	if err := c.handOver(call); err != nil {
		return err
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return err
		}
	}
	return nil
}

// handOver queues call for a sender, or, once the coalescer is closed, sends it at once.
func (c *coalescer) handOver(call *coalescedCall) error {
	err := c.calls.Put(call.ctx, call)
	if errors.Is(err, queue.ErrClosed) {
		c.exec([]*coalescedCall{call})
		return nil
	}
	return err
}

// close stops the senders once every call already handed over has been sent. Calls made after
// it send their commands themselves.
func (c *coalescer) close() { c.calls.Close() }

// mget returns the values of keys, which must share a hash slot, by one MGET sent through the
// coalescer.
func (c *coalescer) mget(ctx context.Context, keys ...string) ([]any, error) {
	cmd := newMGet(ctx, keys)
	if err := c.do(ctx, cmd); err != nil {
		return nil, err
	}
	return cmd.Val(), nil
}

// newMGet returns an MGET of keys, to send in a pipeline.
func newMGet(ctx context.Context, keys []string) *redis.SliceCmd {
	args := make([]any, 1+len(keys))
	args[0] = "mget"
	for i, key := range keys {
		args[1+i] = key
	}
	return redis.NewSliceCmd(ctx, args...)
}

// send sends the calls it receives, each with the calls waiting behind it, until calls is
// closed.
func (c *coalescer) send(calls <-chan *coalescedCall) {
	batch := make([]*coalescedCall, 0, 64)
	for first := range calls {
		batch = append(batch[:0], first)
		n := len(first.cmds)
	collect:
		for n < maxCoalescedCmds {
			select {
			case call, open := <-calls:
				if !open {
					break collect
				}
				batch = append(batch, call)
				n += len(call.cmds)
			default:
				break collect
			}
		}
		c.exec(batch)
		clear(batch) // drop the references until the next batch
	}
}

// exec sends batch in one pipeline and lets every caller go. A batch of one call runs on its
// caller's context, with the values a hook may read; a shared one on none of its callers', so
// that no caller giving up fails the others.
func (c *coalescer) exec(batch []*coalescedCall) {
	ctx := context.WithoutCancel(batch[0].ctx)
	if len(batch) > 1 {
		ctx = context.Background()
	}
	pipe := c.rdb.Pipeline()
	for _, call := range batch {
		for _, cmd := range call.cmds {
			_ = pipe.Process(ctx, cmd) // queues the command; its result is set by Exec
		}
	}
	_, _ = pipe.Exec(ctx) // every command holds its own result or error
	c.metrics.ObserveRedisPipeline(len(batch))
	for _, call := range batch {
		close(call.done)
	}
}
