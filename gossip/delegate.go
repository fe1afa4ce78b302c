package gossip

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalhq/shoal/identity"
)

// delegate is the Cluster as memberlist sees it: memberlist.Delegate,
// memberlist.EventDelegate and memberlist.AliveDelegate. Rule 8 of docs/design.md:
// every method returns at once. It decodes and verifies signatures outside
// the lock, holds Cluster.mu only for a map update (and queueing a delta),
// signals the consumer with a non-blocking send, and never calls back into
// memberlist (the event methods run under memberlist's node lock).
//
// Rule 9 of docs/design.md: nothing about a node is applied unless that node
// signed it. Deltas and snapshots are verified against their owner's
// certificate; node metadata against the certificate of the member it
// describes, for the gossip address it was announced at.
type delegate Cluster

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
)

func (d *delegate) cluster() *Cluster { return (*Cluster)(d) }

// NodeMeta returns the sealed metadata; UpdateNode guarantees it fits the limit.
func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.cluster().meta.Load()
	if len(meta) > limit {
		return nil // unreachable: checkMetaSize enforces memberlist.MetaMaxSize
	}
	return meta
}

// NotifyMsg applies a gossiped instance delta that its owner signed and, if
// it was news, queues the owner's sealed bytes for re-broadcast: memberlist
// only relays its own membership messages, and without re-broadcasting, the
// originator's few transmissions would miss nodes in larger clusters.
//
// A decision is handled the same way, whoever made it: every node relays
// every decision that was news to it.
func (d *delegate) NotifyMsg(buf []byte) {
	c := d.cluster()
	if len(buf) > 0 && buf[0] == kindDecision {
		d.notifyDecision(buf)
		return
	}
	dl, err := decodeDelta(buf)
	if err == nil && dl.Owner == c.cfg.NodeName {
		return // our own, coming back: this node is the authority on it
	}
	if err == nil {
		err = c.trust.verify(dl.Owner, dl.seal, time.Now())
	}
	if err != nil {
		c.reject("delta", err)
		return
	}
	dl.seal = slices.Clone(buf) // memberlist reuses buf
	c.mu.Lock()
	news := c.store.applyDelta(dl)
	if news {
		c.queueLocked(newDeltaBroadcast(dl, dl.seal))
		c.instancesChangedLocked()
	}
	c.mu.Unlock()
	if news {
		c.notify()
	}
}

// notifyDecision applies a gossiped decision (see NotifyMsg).
func (d *delegate) notifyDecision(buf []byte) {
	c := d.cluster()
	dc, err := decodeDecision(buf)
	if err != nil {
		c.reject("decision", err)
		return
	}
	if c.mergeDecisions([]sealedDecision{dc}, true, time.Now()) {
		c.notify()
	}
}

// GetBroadcasts hands memberlist the queued deltas that fit its packet.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.cluster().queue.GetBroadcasts(overhead, limit)
}

// LocalState sends everything this node knows, about every member, for
// push/pull: the certificates it trusts, its own snapshot (sealed now),
// every other owner's sealed snapshot and newer deltas, as the owner sealed
// them, and every decision, as its author sealed it (the certificates include
// every author's, so that a node that never saw the author can verify it).
// Sending all owners, not only our own instances, is what lets state reach a
// node that cannot exchange directly with its owner, and makes anti-entropy
// converge in O(log N) rounds like memberlist's own member list.
func (d *delegate) LocalState(join bool) []byte {
	c := d.cluster()
	c.mu.Lock()
	states, deltas := c.store.export()
	c.mu.Unlock()
	blobs := make([][]byte, 0, len(states)+len(deltas))
	for _, st := range states {
		switch {
		case st.Owner == c.cfg.NodeName:
			blobs = append(blobs, seal(c.cfg.Identity, st.Owner, encodeSnapshotBody(st)))
		case st.seal != nil:
			blobs = append(blobs, st.seal)
		}
	}
	for _, dl := range deltas {
		if dl.seal != nil {
			blobs = append(blobs, dl.seal)
		}
	}
	blobs = append(blobs, c.exportDecisions()...)
	return encodeState(c.trust.all(), blobs) // sealed bytes are never mutated in place
}

// MergeRemoteState merges a peer's push/pull state: it learns the
// certificates that chain to the CA, then applies each snapshot and delta
// that its owner signed, and each decision that its author signed, and drops
// the others.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := d.cluster()
	msg, err := decodeState(buf)
	if err != nil {
		c.reject("push/pull state", err)
		return
	}
	now := time.Now()
	for _, der := range msg.Certs {
		if err := c.trust.addCert(der, now); err != nil {
			c.reject("certificate of "+fmt.Sprintf("%q", identity.NameOf(der)), err)
		}
	}
	states := slices.DeleteFunc(msg.States, func(st ownerState) bool { return !c.accept("snapshot", st.Owner, st.seal, now) })
	deltas := slices.DeleteFunc(msg.Deltas, func(dl delta) bool { return !c.accept("delta", dl.Owner, dl.seal, now) })

	decided := c.mergeDecisions(msg.Decisions, true, now)

	c.mu.Lock()
	changed := c.store.mergeState(states)
	for _, dl := range deltas {
		if c.store.applyDelta(dl) {
			changed = true
		}
	}
	if changed {
		c.instancesChangedLocked()
	}
	if c.promotePendingLocked(now) {
		changed = true
		c.changedLocked()
	}
	c.mu.Unlock()
	if changed || decided {
		c.notify()
	}
}

// accept reports whether a relayed record is another node's and signed by it.
func (c *Cluster) accept(what, owner string, s sealed, now time.Time) bool {
	if owner == c.cfg.NodeName {
		return false
	}
	if err := c.trust.verify(owner, s, now); err != nil {
		c.reject(what, err)
		return false
	}
	return true
}

// NotifyAlive is memberlist's filter on alive messages, including those
// merged from push/pull: it refuses metadata that is not signed by the member
// it describes, announced at another address, stale, or invalid, so that
// memberlist keeps the member's previous state. Metadata signed with a
// certificate this node has not received yet is let through and held (see
// upsertMember) when the member is new or not alive: the certificate follows
// in the same push/pull.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	c := d.cluster()
	if n.Name == c.cfg.NodeName {
		return nil // memberlist refutes what others say about us
	}
	nm, err := c.verifyMeta(n)
	if errors.Is(err, ErrUnknownCert) {
		c.mu.Lock()
		alive := c.aliveLocked(n.Name)
		c.mu.Unlock()
		if !alive {
			return nil
		}
		// An alive member's metadata is already verified; an alive message
		// that memberlist would take as newer but that nobody can verify
		// (a forged fingerprint) must not replace it: memberlist would store
		// its incarnation, and the member's own refutation of a huge one
		// wraps around, so none of its real updates would be taken again.
		// A member that restarts with a new certificate is dead or gone first.
	}
	if err == nil {
		c.mu.Lock()
		err = c.staleLocked(n.Name, nm)
		c.mu.Unlock()
	}
	if err != nil {
		c.reject("alive message", err)
	}
	return err
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
	delete(c.pending, n.Name)
	m := c.members[n.Name]
	if m == nil {
		c.mu.Unlock()
		return // never verified, never shown
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
	if n.Name == c.cfg.NodeName {
		c.mu.Lock()
		// Ours is newer than what memberlist last announced.
		c.members[n.Name] = &member{info: nodeInfo(n.Name, n.Addr.String(), c.localMeta, true), addr: n.Address()}
		c.recountLocked()
		c.changedLocked()
		c.mu.Unlock()
		c.notify()
		return
	}
	nm, err := c.verifyMeta(n)
	c.mu.Lock()
	if err == nil {
		err = c.staleLocked(n.Name, nm)
	}
	if err != nil {
		if errors.Is(err, ErrUnknownCert) && (c.pending[n.Name] != nil || len(c.pending) < maxPending) {
			c.pending[n.Name] = &pendingMember{node: *n}
			c.wantCert()
		}
		c.mu.Unlock()
		c.reject("metadata of member "+n.Name, err)
		return
	}
	c.setMemberLocked(n, nm)
	c.mu.Unlock()
	c.notify()
}

// maxPending bounds the members held for their certificate: names announced
// by a node without a trusted certificate cost no more than this.
const maxPending = 1024

// setMemberLocked shows a member with metadata that verified.
func (c *Cluster) setMemberLocked(n *memberlist.Node, nm nodeMeta) {
	delete(c.pending, n.Name)
	c.store.observeEpoch(n.Name, nm.Epoch) // a restarted node replaces its old instances
	c.members[n.Name] = &member{info: nodeInfo(n.Name, n.Addr.String(), nm.Meta, true), addr: n.Address(), epoch: nm.Epoch, seq: nm.Seq}
	c.recountLocked()
	c.changedLocked()
}

// promotePendingLocked shows the held members whose certificates have arrived.
func (c *Cluster) promotePendingLocked(now time.Time) bool {
	changed := false
	for name, p := range c.pending {
		nm, err := c.verifyMeta(&p.node)
		if err == nil {
			err = c.staleLocked(name, nm)
		}
		switch {
		case err == nil:
			c.setMemberLocked(&p.node, nm)
			changed = true
		case !errors.Is(err, ErrUnknownCert):
			delete(c.pending, name)
			c.reject("metadata of member "+name, err)
		}
	}
	return changed
}

// verifyMeta decodes a member's metadata and checks that the member signed
// it for the address memberlist has for it, and that it is valid.
func (c *Cluster) verifyMeta(n *memberlist.Node) (nodeMeta, error) {
	nm, s, err := decodeMeta(n.Meta)
	if err != nil {
		return nodeMeta{}, err
	}
	if err := c.trust.verify(n.Name, s, time.Now()); err != nil {
		return nodeMeta{}, err
	}
	if nm.GossipAddr != n.Address() {
		return nodeMeta{}, fmt.Errorf("%w: metadata of %q signed for %s, announced at %s", ErrNotOwner, n.Name, nm.GossipAddr, n.Address())
	}
	if err := checkMeta(n.Name, nm.Meta); err != nil {
		return nodeMeta{}, fmt.Errorf("member %q: %w", n.Name, err)
	}
	return nm, nil
}

// errStaleMeta means signed metadata older than what is shown: a replay.
var errStaleMeta = errors.New("gossip: metadata older than the member's current metadata")

// staleLocked refuses metadata older (by run epoch, then sequence) than the
// member's current metadata, so that replaying a node's old announcement
// cannot roll back its labels or drop its current instances.
func (c *Cluster) staleLocked(name string, nm nodeMeta) error {
	m := c.members[name]
	if m != nil && (nm.Epoch < m.epoch || nm.Epoch == m.epoch && nm.Seq < m.seq) {
		return fmt.Errorf("%w: %q epoch %d seq %d, have %d seq %d", errStaleMeta, name, nm.Epoch, nm.Seq, m.epoch, m.seq)
	}
	return nil
}

// reject logs what was dropped: a warning for what only a misbehaving node
// sends (a forgery, an invalid declaration, a decoding bomb), at most once
// a second, and debug for what happens in normal operation (a certificate in
// flight, a stale replay of an honest message).
func (c *Cluster) reject(what string, err error) {
	c.rejected.Add(1)
	benign := errors.Is(err, ErrUnknownCert) || errors.Is(err, errStaleMeta)
	now := time.Now().UnixNano()
	last := c.lastWarn.Load()
	if benign || now-last < int64(time.Second) || !c.lastWarn.CompareAndSwap(last, now) {
		c.log.Debug("gossip: dropped "+what, "err", err)
		return
	}
	c.log.Warn("gossip: dropped "+what, "err", err)
}

func (c *Cluster) recountLocked() {
	var n int32
	for _, m := range c.members {
		if m.info.Alive {
			n++
		}
	}
	c.alive.Store(n)
	if n > 1 {
		c.joined.Store(true)
	}
}

// broadcast is one queued message. It is named by what it is about (an
// owner's instance, a decision's key), so a newer message about the same
// thing replaces a queued older one and the queue holds at most one message
// per instance or key.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func newDeltaBroadcast(d delta, msg []byte) *broadcast {
	return &broadcast{name: d.Owner + "\x00" + d.Record.Info.ID, msg: msg}
}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}

func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
