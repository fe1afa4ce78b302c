package gossip

import (
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the Cluster as memberlist sees it: memberlist.Delegate and
// memberlist.EventDelegate. Invariant (DESIGN 8): every method returns at
// once. It decodes outside the lock, holds Cluster.mu only for a map update
// (and queueing a delta), signals the consumer with a non-blocking send, and never calls back into
// memberlist (the event methods run under memberlist's node lock).
type delegate Cluster

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

func (d *delegate) cluster() *Cluster { return (*Cluster)(d) }

// NodeMeta returns the encoded Meta; encodeMeta guarantees it fits the limit.
func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.cluster().meta.Load()
	if len(meta) > limit {
		return nil // unreachable: encodeMeta enforces memberlist.MetaMaxSize
	}
	return meta
}

// NotifyMsg applies a gossiped instance delta and, if it was news, queues it
// for re-broadcast: memberlist only relays its own membership messages, and
// without re-broadcasting, the originator's few transmissions would miss
// nodes in larger clusters.
func (d *delegate) NotifyMsg(buf []byte) {
	c := d.cluster()
	dl, err := decodeDelta(buf)
	if err != nil {
		c.log.Debug("gossip: dropping message", "err", err)
		return
	}
	c.mu.Lock()
	news := c.store.applyDelta(dl)
	if news {
		c.queueLocked(dl, slices.Clone(buf)) // memberlist reuses buf
		c.changedLocked()
	}
	c.mu.Unlock()
	if news {
		c.notify()
	}
}

// GetBroadcasts hands memberlist the queued deltas that fit its packet.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.cluster().queue.GetBroadcasts(overhead, limit)
}

// LocalState sends everything this node knows, about every member, for
// push/pull. Sending all owners, not only our own instances, is what lets
// state reach a node that cannot exchange directly with its owner, and makes
// anti-entropy converge in O(log N) rounds like memberlist's own member list.
func (d *delegate) LocalState(join bool) []byte {
	c := d.cluster()
	c.mu.Lock()
	states := c.store.export()
	c.mu.Unlock()
	return encodeState(states) // records are values never mutated in place
}

// MergeRemoteState merges a peer's push/pull state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := d.cluster()
	states, err := decodeState(buf)
	if err != nil {
		c.log.Debug("gossip: dropping push/pull state", "err", err)
		return
	}
	c.mu.Lock()
	changed := c.store.mergeState(states)
	if changed {
		c.changedLocked()
	}
	c.mu.Unlock()
	if changed {
		c.notify()
	}
}

// NotifyJoin records a member that joined or came back.
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	d.cluster().log.Info("gossip: member alive", "member", n.Name, "addr", n.Address())
	d.upsertMember(n)
}

// NotifyUpdate records a member's new metadata.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.upsertMember(n) }

// NotifyLeave marks a member dead or departed. It stays in the view with
// Alive=false, and its instances hidden, until pruneDead forgets it.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := d.cluster()
	how := "failed"
	if n.State == memberlist.StateLeft {
		how = "left"
	}
	c.log.Info("gossip: member "+how, "member", n.Name, "addr", n.Address())

	c.mu.Lock()
	m := c.members[n.Name]
	if m == nil {
		m = &member{info: NodeInfo{Name: n.Name, Addr: n.Addr.String()}, addr: n.Address()}
		c.members[n.Name] = m
	}
	m.info.Alive = false
	m.since = time.Now()
	c.recountLocked()
	c.changedLocked()
	c.mu.Unlock()
	c.notify()
}

func (d *delegate) upsertMember(n *memberlist.Node) {
	c := d.cluster()
	epoch, meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("gossip: member metadata unreadable, listing it without labels or capacity", "member", n.Name, "err", err)
	}

	c.mu.Lock()
	if n.Name == c.cfg.NodeName {
		meta = c.localMeta // ours is newer than what memberlist last announced
	} else if err == nil {
		c.store.observeEpoch(n.Name, epoch) // a restarted node replaces its old instances
	}
	c.members[n.Name] = &member{info: nodeInfo(n.Name, n.Addr.String(), meta, true), addr: n.Address()}
	c.recountLocked()
	c.changedLocked()
	c.mu.Unlock()
	c.notify()
}

func (c *Cluster) recountLocked() {
	var n int32
	for _, m := range c.members {
		if m.info.Alive {
			n++
		}
	}
	c.alive.Store(n)
}

// deltaBroadcast is one queued delta. It is named by owner and instance, so
// a newer delta for the same instance replaces a queued older one and the
// queue holds at most one message per instance.
type deltaBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*deltaBroadcast)(nil)

func newDeltaBroadcast(d delta, msg []byte) *deltaBroadcast {
	return &deltaBroadcast{name: d.Owner + "\x00" + d.Record.Info.ID, msg: msg}
}

func (b *deltaBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}

func (b *deltaBroadcast) Name() string    { return b.name }
func (b *deltaBroadcast) Message() []byte { return b.msg }
func (b *deltaBroadcast) Finished()       {}
