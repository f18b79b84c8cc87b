package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

// DefaultFailoverCheckInterval is how often a Store asks Redis who its masters are when
// FailoverOptions.CheckInterval is 0.
const DefaultFailoverCheckInterval = 200 * time.Millisecond

// DefaultFailoverReplayWindow is how far back a repair replays changes when
// FailoverOptions.ReplayWindow is 0.
const DefaultFailoverReplayWindow = 30 * time.Second

// failoverRepairTimeout bounds one attempt at repairing; a repair that fails or times out is
// tried again at the next check, its slots hidden from reads until then.
const failoverRepairTimeout = 5 * time.Minute

// dropBatch is how many keys one SCAN step asks for and one pipeline of UNLINKs deletes.
const dropBatch = 1000

// The ways a failover was repaired, the repair label of attrcache_redis_failovers_total.
const (
	// RepairReplay is a repair by replaying the recent changes (FailoverOptions.Replayer).
	RepairReplay = "replay"
	// RepairDrop is a repair by deleting the prefix's keys of the affected slots.
	RepairDrop = "drop"
)

// FailoverOptions configure the watch that Store.WatchFailovers starts.
type FailoverOptions struct {
	// CheckInterval is how often Redis is asked who its masters are; 0 means
	// DefaultFailoverCheckInterval.
	CheckInterval time.Duration
	// ReplayWindow is how far before the last moment a replaced master was seen answering the
	// replay starts: at least the replication lag tolerated, plus how far the database's clock
	// may be ahead of this host's. 0 means DefaultFailoverReplayWindow.
	ReplayWindow time.Duration
	// Replayer re-applies recent changes to repair a new master; nil, or a replay that fails,
	// repairs by deleting the keys of the affected slots instead.
	Replayer attrcache.ChangeReplayer
	// OnRepair, when not nil, is called after each repair (for tests and diagnostics).
	OnRepair func(FailoverRepair)
}

// FailoverRepair describes one repair after a change of master.
type FailoverRepair struct {
	// Noticed is when the check saw the change; Repaired when the repair ended.
	Noticed, Repaired time.Time
	// Slots is how many hash slots were repaired (all 16384 for a single server).
	Slots int
	// Method is RepairReplay or RepairDrop.
	Method string
	// Dropped is how many keys a drop deleted.
	Dropped int
}

// WatchFailovers starts the goroutine that notices when a Redis master is replaced or loses
// its data — a replica promoted in its place (its replication id changes; Sentinel's switch,
// a Cluster failover) or the same node restarted (its run id changes) — and repairs what the
// new master may lack: it replays the recent changes of the affected slots through
// opts.Replayer, or deletes the prefix's keys there. From the check that notices a change until
// its repair succeeds, reads of keys in the affected slots bypass Redis. The first check, the
// view later ones are compared with, runs before WatchFailovers returns (taking at most about a
// second when Redis does not answer; the first check that gets an answer takes its place then).
// Close stops the watch. It is called at most once per Store.
func (s *Store) WatchFailovers(opts FailoverOptions) {
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultFailoverCheckInterval
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = DefaultFailoverReplayWindow
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &failoverWatch{s: s, opts: opts, cancel: cancel, done: make(chan struct{})}
	if !s.failover.watch.CompareAndSwap(nil, w) {
		cancel()
		panic("cache: WatchFailovers called twice on one Store")
	}
	w.check(ctx) // the first view, to compare the next with, is taken before WatchFailovers returns
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
}

// failoverState is a Store's part in failover repair: the watch, and the slots whose keys
// reads must not take from Redis while their repair is pending.
type failoverState struct {
	watch  atomic.Pointer[failoverWatch]
	hidden atomic.Pointer[slotSet] // nil while no repair is pending
}

// hides reports whether any of keys is in a slot whose repair is pending: a read of them must
// go to the inner store. It costs one atomic load while no repair is pending.
func (s *Store) hides(keys ...string) bool {
	hidden := s.failover.hidden.Load()
	if hidden == nil {
		return false
	}
	for _, key := range keys {
		if hidden.contains(slotOf(key)) {
			return true
		}
	}
	return false
}

// stopFailoverWatch stops the watch, if one runs, and waits for it to end.
func (s *Store) stopFailoverWatch() {
	if w := s.failover.watch.Load(); w != nil {
		w.cancel()
		<-w.done
	}
}

// failoverWatch is the goroutine of WatchFailovers.
type failoverWatch struct {
	s      *Store
	opts   FailoverOptions
	cancel context.CancelFunc
	done   chan struct{}

	topology *topology // what the last successful check saw; nil before the first
	pending  *slotSet  // slots noticed and not yet repaired; nil when none
	since    time.Time // where the pending repair's replay starts; zero: unknown, drop
	noticed  time.Time // when the pending repair was first noticed
	failing  bool      // the last check failed (logged once per run of failures)
}

// run checks every interval until ctx is done.
func (w *failoverWatch) run(ctx context.Context) {
	ticker := time.NewTicker(w.opts.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		w.check(ctx)
	}
}

// check reads the topology once, and repairs the slots whose master changed since the last
// check, together with those whose repair is still pending.
func (w *failoverWatch) check(ctx context.Context) {
	checkCtx, cancel := context.WithTimeout(ctx, max(w.opts.CheckInterval, time.Second))
	cur, err := readTopology(checkCtx, w.s.rdb, time.Now())
	cancel()
	if err != nil {
		// Redis unreachable, or no master known: nothing to compare; the next check will.
		if !w.failing {
			w.failing = true
			w.s.log.Warn("cache: cannot tell whether a Redis master was replaced until Redis answers INFO and CLUSTER SLOTS", "err", err)
		}
		return
	}
	w.failing = false
	if w.topology != nil {
		changed, since := w.topology.changedTo(cur)
		cur.inherit(w.topology)
		if changed != nil {
			w.notice(changed, since, cur)
		}
	}
	w.topology = cur
	if w.pending != nil {
		w.repair(ctx)
	}
}

// notice adds changed to the pending repair and hides its slots from reads at once.
func (w *failoverWatch) notice(changed *slotSet, since time.Time, cur *topology) {
	if w.pending == nil {
		w.pending, w.since, w.noticed = changed, since, time.Now()
	} else {
		w.pending.addAll(changed)
		if since.IsZero() || since.Before(w.since) {
			w.since = since
		}
	}
	hidden := *w.pending
	w.s.failover.hidden.Store(&hidden)
	w.s.log.Warn("cache: a Redis master was replaced or lost its data; repairing its slots",
		"slots", changed.len(), "masters", cur.mastersOf(changed))
}

// repair replays, or failing that drops, the pending slots, and unhides them once done.
func (w *failoverWatch) repair(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, failoverRepairTimeout)
	defer cancel()
	slots := w.pending
	rep := FailoverRepair{Noticed: w.noticed, Slots: slots.len(), Method: RepairDrop}
	replayed := false
	if w.opts.Replayer != nil && !w.since.IsZero() {
		since := w.since.Add(-w.opts.ReplayWindow)
		err := w.opts.Replayer.ReplayChanges(ctx, since, func(userID string) bool {
			return slots.contains(slotOf(w.s.keys.userTag(userID)))
		})
		if err == nil {
			replayed, rep.Method = true, RepairReplay
		} else {
			w.s.log.Warn("cache: replaying recent changes after a Redis failover failed; dropping the keys instead", "err", err)
		}
	}
	if !replayed {
		dropped, err := w.drop(ctx, slots)
		rep.Dropped = dropped
		if err != nil {
			w.s.log.Warn("cache: dropping keys after a Redis failover failed; trying again, reads bypass those slots meanwhile",
				"slots", rep.Slots, "dropped", dropped, "err", err)
			return
		}
	}
	rep.Repaired = time.Now()
	w.pending, w.since = nil, time.Time{}
	w.s.failover.hidden.Store(nil)
	w.s.metrics.ObserveRedisFailover(rep.Method, rep.Repaired.Sub(rep.Noticed))
	w.s.log.Warn("cache: repaired the slots of a replaced Redis master",
		"slots", rep.Slots, "repair", rep.Method, "dropped", rep.Dropped, "elapsed", rep.Repaired.Sub(rep.Noticed))
	if w.opts.OnRepair != nil {
		w.opts.OnRepair(rep)
	}
}

// drop deletes the prefix's keys in slots from the masters that now serve them, except failure
// counters (their loss would only loosen the throttle), and returns how many it deleted.
func (w *failoverWatch) drop(ctx context.Context, slots *slotSet) (int, error) {
	pattern := globEscaper.Replace(w.s.keys.prefix) + "*"
	counters := w.s.keys.prefix + "{" + failureTagStart
	var dropped atomic.Int64
	dropFrom := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, pattern, dropBatch).Iterator()
		batch := make([]string, 0, dropBatch)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// One UNLINK per key: a cluster node refuses one command over keys of several slots.
			pipe := node.Pipeline()
			for _, key := range batch {
				pipe.Unlink(ctx, key)
			}
			_, err := pipe.Exec(ctx)
			dropped.Add(int64(len(batch)))
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			key := iter.Val()
			if !slots.contains(slotOf(key)) || strings.HasPrefix(key, counters) {
				continue
			}
			if batch = append(batch, key); len(batch) == dropBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	var err error
	switch rdb := w.s.rdb.(type) {
	case *redis.Client:
		err = dropFrom(ctx, rdb)
	case *redis.ClusterClient:
		masters := w.topology.mastersOf(slots)
		var mu sync.Mutex
		reached := 0
		err = rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			if !slices.Contains(masters, node.Options().Addr) {
				return nil
			}
			mu.Lock()
			reached++
			mu.Unlock()
			return dropFrom(ctx, node)
		})
		if err == nil && reached < len(masters) {
			// The client's view of the masters lags the check's: try again at the next check.
			err = fmt.Errorf("reached %d of the masters %v", reached, masters)
		}
	default:
		err = fmt.Errorf("unsupported Redis client %T", w.s.rdb)
	}
	return int(dropped.Load()), err
}

// globEscaper escapes what SCAN's MATCH would read as a pattern.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// nodeIdentity tells one life of one master's dataset from another: a restart changes the run
// id, a promotion (or a resync from scratch) the replication id.
type nodeIdentity struct{ runID, replID string }

// master is one master as a check saw it.
type master struct {
	id       string // the Cluster node id; "" for a single server
	addr     string // as the client reaches it
	identity nodeIdentity
	seen     time.Time // when it last answered INFO; zero if it never did
}

// topology maps every slot to its master: all of them to one for a single server (and
// Sentinel), per slot range for a Cluster.
type topology struct {
	bySlot [numSlots]*master
}

// readTopology asks Redis who its masters are and each master for its identity.
func readTopology(ctx context.Context, rdb redis.UniversalClient, now time.Time) (*topology, error) {
	var t topology
	switch rdb := rdb.(type) {
	case *redis.Client:
		id, err := readIdentity(ctx, rdb)
		if err != nil {
			return nil, err
		}
		m := &master{addr: rdb.Options().Addr, identity: id, seen: now}
		for slot := range t.bySlot {
			t.bySlot[slot] = m
		}
		return &t, nil
	case *redis.ClusterClient:
		ranges, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			return nil, err
		}
		var mu sync.Mutex
		identities := make(map[string]nodeIdentity)
		// A master that does not answer (a dead one, before its replica takes over) keeps the
		// identity it had (inherit).
		_ = rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			id, err := readIdentity(ctx, node)
			if err == nil {
				mu.Lock()
				identities[node.Options().Addr] = id
				mu.Unlock()
			}
			return err
		})
		for _, r := range ranges {
			if len(r.Nodes) == 0 || r.Start < 0 || r.End >= numSlots || r.Start > r.End {
				continue
			}
			m := &master{id: r.Nodes[0].ID, addr: r.Nodes[0].Addr}
			if id, ok := identities[m.addr]; ok {
				m.identity, m.seen = id, now
			}
			for slot := r.Start; slot <= r.End; slot++ {
				t.bySlot[slot] = m
			}
		}
		return &t, nil
	default:
		return nil, fmt.Errorf("cache: failover watch: unsupported Redis client %T", rdb)
	}
}

// readIdentity reads a node's run id and replication id.
func readIdentity(ctx context.Context, node *redis.Client) (nodeIdentity, error) {
	info, err := node.Info(ctx, "server", "replication").Result()
	if err != nil {
		return nodeIdentity{}, err
	}
	var id nodeIdentity
	lines := bufio.NewScanner(strings.NewReader(info))
	for lines.Scan() {
		name, value, _ := strings.Cut(strings.TrimSpace(lines.Text()), ":")
		switch name {
		case "run_id":
			id.runID = value
		case "master_replid":
			id.replID = value
		}
	}
	if id.runID == "" || id.replID == "" {
		return nodeIdentity{}, errors.New("INFO lacks run_id or master_replid")
	}
	return id, nil
}

// changedTo returns the slots whose data may have been lost between t and next: those now
// served by a node that was no master in t (a replica promoted: a failover), and those whose
// master has another identity (a restart, a resync); a slot moved to a node that was a master
// already (a resharding, which moves keys along) is not among them. since is the earliest time
// the replaced masters were last seen answering, zero if one never was. changed is nil when no
// slot changed.
func (t *topology) changedTo(next *topology) (changed *slotSet, since time.Time) {
	wasMaster := make(map[string]bool)
	for _, m := range t.bySlot {
		if m != nil {
			wasMaster[m.id] = true
		}
	}
	sinceKnown := true
	for slot, was := range t.bySlot {
		now := next.bySlot[slot]
		if was == nil || now == nil {
			continue
		}
		promoted := now.id != was.id && !wasMaster[now.id]
		restarted := now.id == was.id && now.identity != (nodeIdentity{}) && was.identity != (nodeIdentity{}) &&
			now.identity != was.identity
		if !promoted && !restarted {
			continue
		}
		if changed == nil {
			changed = &slotSet{}
		}
		changed.add(slot)
		switch {
		case was.seen.IsZero():
			sinceKnown = false
		case since.IsZero() || was.seen.Before(since):
			since = was.seen
		}
	}
	if !sinceKnown {
		since = time.Time{}
	}
	return changed, since
}

// inherit completes t with what prev knew: a slot no master serves now keeps its former one,
// and a master that did not answer this time keeps its former identity.
func (t *topology) inherit(prev *topology) {
	for slot, now := range t.bySlot {
		was := prev.bySlot[slot]
		switch {
		case was == nil:
		case now == nil:
			t.bySlot[slot] = was
		case now.id == was.id && now.identity == (nodeIdentity{}):
			now.identity, now.seen = was.identity, was.seen
		}
	}
}

// mastersOf returns the addresses of the masters that serve slots.
func (t *topology) mastersOf(slots *slotSet) []string {
	var addrs []string
	for slot, m := range t.bySlot {
		if m != nil && slots.contains(slot) && !slices.Contains(addrs, m.addr) {
			addrs = append(addrs, m.addr)
		}
	}
	return addrs
}
