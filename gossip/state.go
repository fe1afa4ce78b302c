package gossip

import (
	"cmp"
	"maps"
	"slices"
)

// store is the versioned instance table: for every owner (the node that runs
// the instances) the latest version of each instance this node has heard of.
// It is pure (no I/O, no clock) and not safe for concurrent use; Cluster
// guards it with its mutex.
//
// Versions. Each owner numbers its changes with (Epoch, Counter). Epoch
// identifies one run of the owner's process (its start time in nanoseconds).
// The owner's node metadata carries its current epoch, and memberlist
// delivers metadata ordered by its own incarnation numbers, which it bumps
// when a restarted node refutes its old self; so metadata is the authority: a
// restarted owner replaces what its previous run published as soon as peers
// see its new metadata, and state stamped with another epoch is ignored. (The
// store follows whatever epoch it is told; the Cluster only tells it epochs
// that do not go back, so that replayed old metadata cannot roll an owner back.) State that arrives before the owner's metadata
// is kept tentatively (the highest epoch wins until metadata confirms or
// replaces it) so that a cold start, when deltas outrun membership, loses
// nothing; tentative state is never shown. Counter increases by one per
// instance change. Every record carries the Counter of the change that
// produced it, and deletions leave a tombstone record, so a delta that
// arrives late or out of order is ignored instead of resurrecting or
// reverting an instance.
//
// Floor. A push/pull state carries, per owner, a Floor: "every change up to
// this Counter is reflected here". The owner's own state has Floor = its
// latest Counter and no tombstones. So when a state with a higher Floor
// arrives, any local record at or below that Floor which the state does not
// mention was deleted in the meantime and is dropped, tombstones at or below
// the Floor are no longer needed, and later deltas at or below it are stale.
// This keeps tombstones bounded by the changes since the last full exchange
// and makes merging correct whichever node relays an owner's state.
//
// Signatures. Only the owner can write its state: every delta and snapshot
// is sealed by the owner (messages.go), the Cluster verifies the seal before
// handing it to the store, and the store keeps the sealed bytes so that push/pull
// relays the owner's own words: the latest snapshot (which covers every
// record at or below the floor) and the sealed delta of every newer record.
type store struct {
	self    string
	counter uint64 // the latest Counter of our own changes
	owners  map[string]*ownerRecord
	sorted  []namedOwner // owners by name; nil when an owner was added, replaced or removed
}

// namedOwner is an owner's record with its name, for walking owners in name order.
type namedOwner struct {
	name string
	*ownerRecord
}

type ownerRecord struct {
	epoch     int64
	confirmed bool // the owner's metadata announced epoch
	floor     uint64
	snapshot  []byte            // the owner's sealed snapshot at floor, relayed in push/pull
	records   map[string]record // by instance ID
	// shown is the live records' instances as views show them, sorted, built on demand
	// and shared by every view until the records change; valid says it is up to date.
	shown []InstanceInfo
	valid bool
}

// maxRecordsPerOwner bounds the records kept for one owner, tombstones
// included, so that no node can make the others hold more than this about it.
const maxRecordsPerOwner = 10000

func newOwnerRecord(epoch int64, confirmed bool) *ownerRecord {
	return &ownerRecord{epoch: epoch, confirmed: confirmed, records: map[string]record{}}
}

func newStore(self string, epoch int64) *store {
	return &store{self: self, owners: map[string]*ownerRecord{self: newOwnerRecord(epoch, true)}}
}

// setLocal replaces this node's own instance list and returns one delta per
// instance that was added, changed or removed, in ID order. Node is set to the
// store's own name. IDs must be unique (Cluster.SetInstances checks).
func (s *store) setLocal(list []InstanceInfo) []delta {
	own := s.owners[s.self]
	var out []delta
	emit := func(r record) {
		s.counter++
		r.Counter = s.counter
		out = append(out, delta{Owner: s.self, Epoch: own.epoch, Record: r})
		own.valid = false
		if r.Deleted {
			delete(own.records, r.Info.ID)
		} else {
			own.records[r.Info.ID] = r
		}
	}

	sorted := slices.Clone(list)
	slices.SortFunc(sorted, func(a, b InstanceInfo) int { return cmp.Compare(a.ID, b.ID) })
	keep := make(map[string]bool, len(sorted))
	for _, inst := range sorted {
		inst.Node = s.self
		inst.Ports = slices.Clone(inst.Ports)
		keep[inst.ID] = true
		if old, ok := own.records[inst.ID]; ok && equalInstance(old.Info, inst) {
			continue
		}
		emit(record{Info: inst})
	}
	for _, id := range slices.Sorted(maps.Keys(own.records)) {
		if !keep[id] {
			emit(record{Deleted: true, Info: InstanceInfo{ID: id, Node: s.self}})
		}
	}
	own.floor = s.counter
	return out
}

// owner returns the record that state from name's run epoch goes to, if
// any: the confirmed record of that epoch, or a tentative one (created or
// replaced by a higher epoch) while the owner's metadata is not known.
func (s *store) owner(name string, epoch int64) (*ownerRecord, bool) {
	if name == s.self {
		return nil, false
	}
	o := s.owners[name]
	switch {
	case o != nil && o.epoch == epoch:
	case o == nil || !o.confirmed && epoch > o.epoch:
		o = newOwnerRecord(epoch, false)
		s.sorted = nil
		s.owners[name] = o
	default:
		return nil, false
	}
	return o, true
}

// observeEpoch records that owner now runs with epoch (learnt from its node
// metadata): it confirms tentative state of that epoch and drops any other,
// including the state of the owner's previous run. It reports whether
// anything visible may have changed.
func (s *store) observeEpoch(owner string, epoch int64) bool {
	if owner == s.self {
		return false
	}
	o := s.owners[owner]
	switch {
	case o != nil && o.epoch == epoch && o.confirmed:
		return false
	case o != nil && o.epoch == epoch:
		o.confirmed = true
	default:
		s.owners[owner] = newOwnerRecord(epoch, true)
		s.sorted = nil
	}
	return true
}

// applyDelta applies one gossiped change and reports whether it was news
// (then it is worth re-broadcasting). Our own changes coming back are ignored:
// this node is the authority on its own instances.
func (s *store) applyDelta(d delta) bool {
	o, ok := s.owner(d.Owner, d.Epoch)
	r := d.Record
	r.signed = d.seal
	return ok && o.apply(r)
}

// apply stores r unless a change at least as new is already reflected, or
// the owner already has maxRecordsPerOwner records.
func (o *ownerRecord) apply(r record) bool {
	if r.Counter <= o.floor {
		return false
	}
	cur, ok := o.records[r.Info.ID]
	if ok && cur.Counter >= r.Counter || !ok && len(o.records) >= maxRecordsPerOwner {
		return false
	}
	r.signed = slices.Clone(r.signed) // not the message buffer it arrived in
	o.records[r.Info.ID] = r
	o.valid = false
	return true
}

// mergeState merges owners' snapshots (relayed by any node) and reports
// whether anything changed.
func (s *store) mergeState(states []ownerState) bool {
	changed := false
	for _, st := range states {
		if o, ok := s.owner(st.Owner, st.Epoch); ok && o.merge(st) {
			changed = true
		}
	}
	return changed
}

func (o *ownerRecord) merge(st ownerState) bool {
	changed := false
	mentioned := make(map[string]bool, len(st.Records))
	for _, r := range st.Records {
		mentioned[r.Info.ID] = true
		r.signed = nil // the snapshot covers it
		if o.apply(r) {
			changed = true
		}
	}
	if st.Floor <= o.floor {
		return changed
	}
	for id, r := range o.records {
		if r.Counter > st.Floor {
			continue // newer than the snapshot: keep
		}
		if !mentioned[id] && !r.Deleted {
			changed = true // deleted at or before st.Floor
			o.valid = false
		}
		if !mentioned[id] || r.Deleted {
			delete(o.records, id)
		} else if r.signed != nil {
			r.signed = nil // the snapshot covers it now
			o.records[id] = r
		}
	}
	o.floor = st.Floor
	o.snapshot = slices.Clone(st.seal)
	return changed
}

// ownerNames returns the names of all owners with state, this node included.
func (s *store) ownerNames() []string { return slices.Collect(maps.Keys(s.owners)) }

// forget drops everything known about owner (it left the member list).
func (s *store) forget(owner string) bool {
	if owner == s.self || s.owners[owner] == nil {
		return false
	}
	delete(s.owners, owner)
	s.sorted = nil
	return true
}

// export returns the state for push/pull: this node's own snapshot (first,
// not sealed yet: the Cluster seals it), the latest snapshot of every other
// owner that has one, and the delta of every record newer than its owner's
// snapshot, tentative owners included, sorted for a stable encoding. A
// snapshot's Records are those its floor still covers; its seal holds the
// owner's original bytes.
func (s *store) export() ([]ownerState, []delta) {
	var states []ownerState
	var deltas []delta
	for _, name := range slices.Sorted(maps.Keys(s.owners)) {
		o := s.owners[name]
		st := ownerState{Owner: name, Epoch: o.epoch, Floor: o.floor, seal: o.snapshot}
		for _, id := range slices.Sorted(maps.Keys(o.records)) {
			r := o.records[id]
			if r.Counter <= o.floor {
				st.Records = append(st.Records, r)
			} else {
				deltas = append(deltas, delta{Owner: name, Epoch: o.epoch, Record: r, seal: r.signed})
			}
		}
		if name == s.self || o.floor > 0 {
			states = append(states, st)
		}
	}
	return states, deltas
}

// view returns the live instances of every owner that include accepts and
// whose epoch is confirmed and that has any, by owner name. An owner's list is
// sorted once per change of its records and shared, never modified, by every
// view until the next: a view costs the number of owners plus what changed.
func (s *store) view(include func(owner string) bool) []OwnerInstances {
	if s.sorted == nil {
		for _, name := range slices.Sorted(maps.Keys(s.owners)) {
			s.sorted = append(s.sorted, namedOwner{name, s.owners[name]})
		}
	}
	out := make([]OwnerInstances, 0, len(s.sorted))
	for _, o := range s.sorted {
		if !o.confirmed || !include(o.name) {
			continue
		}
		if !o.valid {
			o.shown, o.valid = nil, true
			for _, r := range o.records {
				if !r.Deleted {
					o.shown = append(o.shown, r.Info)
				}
			}
			slices.SortFunc(o.shown, compareInstances)
			o.shown = slices.Clip(o.shown)
		}
		if len(o.shown) > 0 {
			out = append(out, OwnerInstances{Node: o.name, Instances: o.shown})
		}
	}
	return out
}

func equalInstance(a, b InstanceInfo) bool {
	return a.ID == b.ID && a.Namespace == b.Namespace && a.Workload == b.Workload &&
		a.Node == b.Node && a.SpecHash == b.SpecHash && a.Ready == b.Ready &&
		a.Running == b.Running && a.Addr == b.Addr && slices.Equal(a.Ports, b.Ports)
}
