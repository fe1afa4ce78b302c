package planner

import (
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// nodeInfo is a Node as the planner indexes it.
type nodeInfo struct {
	name   string
	labels map[string]string
	alloc  Resources
	alive  bool
	hash   uint64
	// maxInstances is the node's MaxInstances, defaulted.
	maxInstances int32
	perms        Permissions
}

// topology maps every node to its domain under one topology key (a zone, a host, any label).
type topology struct {
	// dom is the domain of each node, -1 when the node lacks the label.
	dom []int32
	// domains is how many distinct values the key has.
	domains int
}

// tracker counts, per topology domain, the placed instances that match one pod-affinity
// term or spread constraint (a selector over the namespaces it looks in). Workloads with the
// same term share a tracker, and each placement updates the trackers it matches, so an
// affinity check is one array read instead of a walk over placed instances.
type tracker struct {
	// id is the creation order, for iterating trackers in a fixed order.
	id         int
	topo       *topology
	selector   *spec.LabelSelector
	namespaces []string
	// match counts the matching instances placed in each domain; total sums them.
	match []int32
	total int32
	// owners counts, per domain, instances of workloads that hold this term as a required
	// anti-affinity: an instance matching it may not join them (the symmetric rule). It is
	// nil while no workload holds the term that way.
	owners []int32
	// spreads are the constraints over this count that keep its minimum up to date.
	spreads []*spreadState
}

func (t *tracker) matches(w *workload) bool {
	return slices.Contains(t.namespaces, w.ns) && t.selector.Matches(w.labels)
}

// add moves the count of node n's domain by delta.
func (t *tracker) add(n int32, delta int32) {
	d := t.topo.dom[n]
	if d < 0 {
		return
	}
	from := t.match[d]
	t.match[d] += delta
	t.total += delta
	for _, s := range t.spreads {
		s.move(d, from, from+delta)
	}
}

// spreadState is one topologySpreadConstraint of one workload. It keeps the smallest count
// over the domains the workload may use, through a histogram of counts, so the skew of a
// candidate domain is known in O(1).
type spreadState struct {
	t       *tracker
	maxSkew int32
	hard    bool
	// self is 1 when the workload's own instances match the constraint's selector.
	self int32
	// eligible marks the domains of the nodes the workload's static constraints allow.
	eligible []bool
	hist     []int32
	min      int32
}

func newSpreadState(t *tracker, c spec.TopologySpreadConstraint, self bool, allowed bitset) *spreadState {
	s := &spreadState{
		t:        t,
		maxSkew:  max(c.MaxSkew, 1),
		hard:     c.WhenUnsatisfiable != spec.ScheduleAnyway,
		eligible: make([]bool, t.topo.domains),
	}
	if self {
		s.self = 1
	}
	eligible := int32(0)
	for n, d := range t.topo.dom {
		if d >= 0 && allowed.has(int32(n)) && !s.eligible[d] {
			s.eligible[d] = true
			eligible++
		}
	}
	// Counts are all zero: states are built before anything is placed.
	s.hist = []int32{eligible}
	return s
}

func (s *spreadState) move(d, from, to int32) {
	if !s.eligible[d] {
		return
	}
	s.hist[from]--
	for int(to) >= len(s.hist) {
		s.hist = append(s.hist, 0)
	}
	s.hist[to]++
	s.min = min(s.min, to)
	for s.hist[s.min] == 0 && int(s.min)+1 < len(s.hist) {
		s.min++
	}
}

// affinityTerm is a required pod-affinity term of a workload.
type affinityTerm struct {
	t *tracker
	// self is true when the workload matches its own term: the first instance of a group
	// that must be together may go anywhere.
	self bool
}

// weightedTerm is a preferred pod-affinity (positive weight) or anti-affinity (negative) term.
type weightedTerm struct {
	t      *tracker
	weight int64
}

// slotState is the plan's knowledge of one replica slot.
type slotState struct {
	node int32
	kept bool
	// copies are the running instances with this slot's ID, best first.
	copies []Instance
	// trouble is nil while nothing went wrong, as for almost every slot: a plan holds a
	// slotState per replica of the cluster, and what is rare stays out of it.
	trouble *slotTrouble
}

// slotTrouble is what went wrong with a slot.
type slotTrouble struct {
	// refused says, per copy not kept, why it could not keep its place.
	refused []string
	// unplaced says why no node takes the slot.
	unplaced string
}

// refuse records why the next copy could not keep its place.
func (s *slotState) refuse(why string) {
	if s.trouble == nil {
		s.trouble = &slotTrouble{}
	}
	s.trouble.refused = append(s.trouble.refused, why)
}

// refused says, per copy not kept, why it could not keep its place.
func (s *slotState) refused() []string {
	if s.trouble == nil {
		return nil
	}
	return s.trouble.refused
}

// setUnplaced records why no node takes the slot, "" when one does.
func (s *slotState) setUnplaced(why string) {
	if s.trouble == nil {
		if why == "" {
			return
		}
		s.trouble = &slotTrouble{}
	}
	s.trouble.unplaced = why
}

// unplaced says why no node takes the slot.
func (s *slotState) unplaced() string {
	if s.trouble == nil {
		return ""
	}
	return s.trouble.unplaced
}

// workload is a Deployment compiled for placement, and what the plan knows of its slots.
type workload struct {
	d              *spec.Deployment
	ns, name, hash string
	// index is the workload's position in state.workloads.
	index int32
	// prefix is every instance ID of this spec without the slot number.
	prefix   string
	replicas int
	// req is one instance's requests; ports the host ports it holds (see podPorts).
	req   Resources
	ports []uint32
	// needs is what an instance asks of its node beyond the default sandbox.
	needs  needs
	labels map[string]string
	// slotBase is the hash of the workload's identity that slot positions derive from.
	slotBase     uint64
	static       *staticSet
	requiredNode *spec.NodeSelector
	contrib      []*tracker // trackers this workload's instances count in
	antiOwn      []*tracker // its required anti-affinity terms
	antiOf       []*tracker // others' required anti-affinity terms that match it
	affinity     []affinityTerm
	preferred    []weightedTerm
	spreads      []*spreadState
	// requiresAffinity is set when some replica must join another instance.
	requiresAffinity bool
	slots            []slotState
	// outdated is one running instance per ID of an older spec.
	outdated []Instance
}

// staticSet is the nodes a workload may use whatever is placed: alive, matching its
// nodeSelector and required node affinity, and allowing what it asks beyond the default
// sandbox. Tiers split them by preferred node affinity.
type staticSet struct {
	all   bitset
	tiers []*tier
}

// tier is the static candidates with one preferred-node-affinity score.
type tier struct {
	score   int64
	members bitset
	count   int
	ring    *ring
	// filter is set when the tier walks a larger ring and skips non-members.
	filter bool
}

// state is one run of Plan: the indexes and the usage built up while placing.
type state struct {
	hash       HashFunc
	podNetwork bool
	revision   string
	*Nodes
	// labelIdx is built by labelIndex, when a node selector first asks.
	labelIdx map[string]map[string][]int32
	topos    map[string]*topology
	trackers map[string]*tracker
	// byLabel indexes trackers by namespace and one pair of their matchLabels, which an
	// instance must carry to match; unkeyed holds, by namespace, those without matchLabels.
	byLabel map[string][]*tracker
	unkeyed map[string][]*tracker
	statics map[string]*staticSet

	workloads []*workload
	byKey     map[string]*workload

	usedCPU, usedMem []int64
	// count is the instances placed on each node.
	count   []int32
	ports   [][]uint32
	visited []uint32
	stamp   uint32
	sample  []int32
	// refusals is why each node refused the replica scan last examined, for the details
	// of an unplaced replica's reason (refusalDetails); allocated by the first scan.
	refusals []reason
	// residents is, per node, the index in workloads of each instance placed there. It
	// is nil until an unplaced replica's reason first needs it (indexResidents), so that
	// plans where everything fits never pay for it; reserve keeps it up to date after.
	residents [][]int32
	// use is resourceHolders' scratch, one entry per workload, zero between calls.
	use []resourceUse

	stops []Stop
	trace *trace
}

func newState(p *Planner, desired spec.Desired, nodes *Nodes, instances []Instance) *state {
	st := &state{
		hash:       p.hash,
		podNetwork: p.podNetwork,
		revision:   desired.Revision.Commit,
		Nodes:      nodes,
		topos:      map[string]*topology{},
		trackers:   map[string]*tracker{},
		byLabel:    map[string][]*tracker{},
		unkeyed:    map[string][]*tracker{},
		statics:    map[string]*staticSet{},
		byKey:      map[string]*workload{},
	}
	n := len(nodes.nodes)
	st.usedCPU, st.usedMem = make([]int64, n), make([]int64, n)
	st.count, st.ports, st.visited = make([]int32, n), make([][]uint32, n), make([]uint32, n)
	set := desired.Objects
	if set == nil {
		set = &spec.Set{}
	}
	st.compileWorkloads(set)
	st.classify(instances)
	return st
}

// Nodes is a set of nodes indexed for placement: sorted by name without duplicates, with
// the ring built. It depends on the nodes alone and is never modified once built, so a
// caller whose members did not change may hand the same Nodes to any number of plans
// (see Planner.PlanOn) instead of paying for the index on each.
type Nodes struct {
	nodes  []nodeInfo
	byName map[string]int32
	alive  []int32
	ring   ring
	// capacity sums the alive nodes' maxInstances.
	capacity int
}

// IndexNodes indexes nodes for placement; their order does not matter.
func IndexNodes(in []Node) *Nodes {
	nodes := slices.Clone(in)
	slices.SortFunc(nodes, compareNodes)
	nodes = slices.CompactFunc(nodes, func(a, b Node) bool { return a.Name == b.Name })
	ix := &Nodes{nodes: make([]nodeInfo, len(nodes)), byName: make(map[string]int32, len(nodes))}
	hashes := make([]uint64, len(nodes))
	alloc := make([]Resources, len(nodes))
	for i, n := range nodes {
		labels := n.Labels
		if _, ok := labels[LabelHostname]; !ok {
			labels = maps.Clone(labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[LabelHostname] = n.Name
		}
		maxInstances := int32(min(n.MaxInstances, math.MaxInt32))
		if n.MaxInstances <= 0 {
			maxInstances = DefaultMaxInstances
		}
		ix.nodes[i] = nodeInfo{name: n.Name, labels: labels, alloc: n.Allocatable, alive: n.Alive, hash: hashString(n.Name), maxInstances: maxInstances, perms: n.Permissions}
		ix.byName[n.Name] = int32(i)
		hashes[i], alloc[i] = ix.nodes[i].hash, n.Allocatable
		if !n.Alive {
			continue
		}
		ix.alive = append(ix.alive, int32(i))
		ix.capacity += int(maxInstances)
	}
	ix.ring = newRing(hashes, alloc, ix.alive)
	return ix
}

// labelIndex returns, by label key and value, the alive nodes carrying the label in index
// order. Only node selectors use it: it is built on first use.
func (st *state) labelIndex() map[string]map[string][]int32 {
	if st.labelIdx == nil {
		st.labelIdx = map[string]map[string][]int32{}
		for _, n := range st.alive {
			for k, v := range st.nodes[n].labels {
				byValue := st.labelIdx[k]
				if byValue == nil {
					byValue = map[string][]int32{}
					st.labelIdx[k] = byValue
				}
				byValue[v] = append(byValue[v], n)
			}
		}
	}
	return st.labelIdx
}

// compareNodes orders nodes by name and, for the duplicate names a confused view may hold,
// by everything else, so that which duplicate survives does not depend on input order: an
// alive report first (a member that rejoined), then the larger allocatable.
func compareNodes(a, b Node) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Or(
		-compareBool(a.Alive, b.Alive),
		cmp.Compare(b.Allocatable.MilliCPU, a.Allocatable.MilliCPU),
		cmp.Compare(b.Allocatable.MemoryBytes, a.Allocatable.MemoryBytes),
		cmp.Compare(b.MaxInstances, a.MaxInstances),
		slices.Compare(flatLabels(a.Labels), flatLabels(b.Labels)),
		cmp.Compare(b.Permissions.Allow, a.Permissions.Allow),
		slices.Compare(a.Permissions.HostPaths, b.Permissions.HostPaths),
		slices.Compare(a.Permissions.Capabilities, b.Permissions.Capabilities),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func flatLabels(labels map[string]string) []string {
	out := make([]string, 0, 2*len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, k, labels[k])
	}
	return out
}

// topology returns the domains of key, building them on first use.
func (st *state) topology(key string) *topology {
	if t, ok := st.topos[key]; ok {
		return t
	}
	t := &topology{dom: make([]int32, len(st.nodes))}
	ids := map[string]int32{}
	for i, n := range st.nodes {
		v, ok := n.labels[key]
		if !ok {
			t.dom[i] = -1
			continue
		}
		id, seen := ids[v]
		if !seen {
			id = int32(len(ids))
			ids[v] = id
		}
		t.dom[i] = id
	}
	t.domains = len(ids)
	st.topos[key] = t
	return t
}

// trackerFor returns the shared tracker of a selector, namespaces and topology key.
func (st *state) trackerFor(sel *spec.LabelSelector, namespaces []string, key string) *tracker {
	namespaces = slices.Compact(slices.Sorted(slices.Values(namespaces)))
	id := signature(sel) + "\x00" + strings.Join(namespaces, ",") + "\x00" + key
	if t, ok := st.trackers[id]; ok {
		return t
	}
	topo := st.topology(key)
	t := &tracker{id: len(st.trackers), topo: topo, selector: sel, namespaces: namespaces, match: make([]int32, topo.domains)}
	st.trackers[id] = t
	for _, ns := range namespaces {
		if sel == nil || len(sel.MatchLabels) == 0 {
			st.unkeyed[ns] = append(st.unkeyed[ns], t)
			continue
		}
		k := slices.Min(slices.Collect(maps.Keys(sel.MatchLabels)))
		key := labelKey(ns, k, sel.MatchLabels[k])
		st.byLabel[key] = append(st.byLabel[key], t)
	}
	return t
}

func labelKey(ns, k, v string) string { return ns + "\x00" + k + "\x00" + v }

// candidateTrackers returns the trackers w's instances might match, by id.
func (st *state) candidateTrackers(w *workload) []*tracker {
	out := slices.Clone(st.unkeyed[w.ns])
	for k, v := range w.labels {
		out = append(out, st.byLabel[labelKey(w.ns, k, v)]...)
	}
	slices.SortFunc(out, func(a, b *tracker) int { return a.id - b.id })
	return out
}

// signature is a canonical text of a value, for sharing work between equal constraints:
// encoding/json sorts map keys.
func signature(v any) string {
	// Most workloads have no node selector or node affinity: skip the encoder for them.
	switch v := v.(type) {
	case map[string]string:
		if v == nil {
			return "null"
		}
	case *spec.NodeSelector:
		if v == nil {
			return "null"
		}
	case []spec.PreferredSchedulingTerm:
		if v == nil {
			return "null"
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Spec types always marshal; were one not to, sharing is only an optimisation.
		return "\x00unshared"
	}
	return string(b)
}

// compileWorkloads turns every Deployment into a workload, in namespace and name order.
func (st *state) compileWorkloads(set *spec.Set) {
	deps := slices.Clone(set.Deployments)
	// spec.Load refuses two Deployments with one key; should a caller pass them anyway, the
	// content decides which is used, never the input order.
	slices.SortFunc(deps, func(a, b *spec.Deployment) int {
		return cmp.Or(strings.Compare(namespaceOf(a), namespaceOf(b)), strings.Compare(a.Metadata.Name, b.Metadata.Name),
			cmp.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Line, b.Source.Line))
	})
	for _, d := range deps {
		key := namespaceOf(d) + "/" + d.Metadata.Name
		if st.byKey[key] != nil {
			continue
		}
		w := st.compile(set, d)
		w.index = int32(len(st.workloads))
		st.workloads = append(st.workloads, w)
		st.byKey[key] = w
	}
	// Which trackers a workload counts in is known only once every workload's terms are.
	for _, w := range st.workloads {
		for _, t := range st.candidateTrackers(w) {
			if !t.matches(w) {
				continue
			}
			w.contrib = append(w.contrib, t)
			if t.owners != nil {
				w.antiOf = append(w.antiOf, t)
			}
		}
	}
}

func namespaceOf(d *spec.Deployment) string {
	if d.Metadata.Namespace == "" {
		return spec.DefaultNamespace
	}
	return d.Metadata.Namespace
}

func (st *state) compile(set *spec.Set, d *spec.Deployment) *workload {
	ps := &d.Spec.Template.Spec
	w := &workload{
		d:        d,
		ns:       namespaceOf(d),
		name:     d.Metadata.Name,
		hash:     st.hash(set, d),
		replicas: replicasOf(d),
		req:      podRequests(ps),
		ports:    podPorts(ps, st.podNetwork),
		needs:    needsOf(ps),
		labels:   d.Spec.Template.Metadata.Labels,
	}
	w.prefix = idPrefix(w.ns, w.name, w.hash)
	w.slotBase = hashString(w.ns + "/" + w.name)
	w.growSlots(min(w.replicas, st.capacity))
	var preferredNode []spec.PreferredSchedulingTerm
	if a := ps.Affinity; a != nil && a.NodeAffinity != nil {
		w.requiredNode = a.NodeAffinity.Required
		preferredNode = a.NodeAffinity.Preferred
	}
	w.static = st.staticFor(ps.NodeSelector, w.requiredNode, preferredNode, &w.needs)
	if a := ps.Affinity; a != nil {
		st.compilePodAffinity(w, a.PodAffinity, 1)
		st.compilePodAffinity(w, a.PodAntiAffinity, -1)
	}
	for _, c := range ps.TopologySpreadConstraints {
		t := st.trackerFor(c.LabelSelector, []string{w.ns}, c.TopologyKey)
		s := newSpreadState(t, c, t.matches(w), w.static.all)
		t.spreads = append(t.spreads, s)
		w.spreads = append(w.spreads, s)
	}
	return w
}

// growSlots makes room for the first n slots. A workload has slots for at most as many
// replicas as the alive nodes can run together, and for every running copy's slot (see
// classify): the others cannot be placed, and are reported as one run (overflowReason).
func (w *workload) growSlots(n int) {
	if n > cap(w.slots) {
		w.slots = slices.Grow(w.slots, n-len(w.slots))
	}
	for len(w.slots) < n {
		w.slots = append(w.slots, slotState{node: -1})
	}
}

// compilePodAffinity records the terms of a podAffinity (sign 1) or podAntiAffinity (-1).
func (st *state) compilePodAffinity(w *workload, pa *spec.PodAffinity, sign int64) {
	if pa == nil {
		return
	}
	for _, term := range pa.Required {
		t := st.trackerFor(term.LabelSelector, termNamespaces(term, w.ns), term.TopologyKey)
		if sign > 0 {
			w.affinity = append(w.affinity, affinityTerm{t: t, self: t.matches(w)})
			w.requiresAffinity = true
			continue
		}
		if t.owners == nil {
			t.owners = make([]int32, t.topo.domains)
		}
		w.antiOwn = append(w.antiOwn, t)
	}
	for _, wt := range pa.Preferred {
		term := wt.PodAffinityTerm
		t := st.trackerFor(term.LabelSelector, termNamespaces(term, w.ns), term.TopologyKey)
		w.preferred = append(w.preferred, weightedTerm{t: t, weight: sign * int64(wt.Weight)})
	}
}

func termNamespaces(t spec.PodAffinityTerm, own string) []string {
	if len(t.Namespaces) == 0 {
		return []string{own}
	}
	return t.Namespaces
}

// replicasOf is spec.replicas, 1 when unset as Kubernetes defaults it.
func replicasOf(d *spec.Deployment) int {
	if d.Spec.Replicas == nil {
		return 1
	}
	return max(int(*d.Spec.Replicas), 0)
}

// podRequests is what an instance reserves on its node: spec.PodSpec.PodRequests, the
// Kubernetes rule for init containers and sidecars.
func podRequests(ps *spec.PodSpec) Resources {
	cpu, mem := ps.PodRequests()
	return Resources{MilliCPU: cpu, MemoryBytes: mem}
}

// podPorts is the sorted set of ports an instance holds on its node (spec.HostPorts),
// encoded compactly for the per-node port lists: the number shifted left twice, with the
// low bits 0 for TCP, 1 for UDP and 2 for SCTP (three protocols that do not collide).
func podPorts(ps *spec.PodSpec, podNetwork bool) []uint32 {
	var ports []uint32
	for _, p := range ps.HostPorts(podNetwork) {
		key := uint32(p.Port) << 2
		switch p.Protocol {
		case spec.ProtocolUDP:
			key |= 1
		case spec.ProtocolSCTP:
			key |= 2
		}
		ports = append(ports, key)
	}
	return ports
}

// staticFor returns the nodes allowed by a nodeSelector, node affinity and permissions,
// shared between workloads that ask the same.
func (st *state) staticFor(selector map[string]string, required *spec.NodeSelector, preferred []spec.PreferredSchedulingTerm, nd *needs) *staticSet {
	id := signature(selector) + "\x00" + signature(required) + "\x00" + signature(preferred)
	if !nd.none() {
		id += "\x00" + signature([]any{uint64(nd.allow), nd.hostPaths, nd.caps})
	}
	if s, ok := st.statics[id]; ok {
		return s
	}
	// The label index narrows the nodeSelector to its rarest pair; which of equally rare
	// pairs is picked does not matter, since every pair is checked after.
	candidates := st.alive
	for k, v := range selector {
		if nodes := st.labelIndex()[k][v]; len(nodes) < len(candidates) {
			candidates = nodes
		}
	}
	s := &staticSet{all: newBitset(len(st.nodes))}
	byScore := map[int64]*tier{}
	for _, n := range candidates {
		labels := st.nodes[n].labels
		if !spec.MatchesLabels(selector, labels) || !required.Matches(labels) || st.nodes[n].perms.refusal(nd) != fits {
			continue
		}
		score := preferredScore(preferred, labels)
		t := byScore[score]
		if t == nil {
			t = &tier{score: score, members: newBitset(len(st.nodes))}
			byScore[score] = t
			s.tiers = append(s.tiers, t)
		}
		t.members.set(n)
		t.count++
		s.all.set(n)
	}
	slices.SortFunc(s.tiers, func(a, b *tier) int { return cmp.Compare(b.score, a.score) })
	st.statics[id] = s
	return s
}

// ringFor returns the ring a tier walks: the shared ring when the tier is most of the
// cluster, else a sub-ring of its members (same order, fewer points to skip).
func (st *state) ringFor(t *tier) *ring {
	if t.ring == nil {
		switch {
		case t.count == len(st.alive):
			t.ring = &st.ring
		case 4*t.count >= len(st.alive):
			t.ring, t.filter = &st.ring, true
		default:
			sub := st.ring.subset(t.members)
			t.ring = &sub
		}
	}
	return t.ring
}

// tierOf returns the index of the tier holding node n, or -1.
func (s *staticSet) tierOf(n int32) int {
	for i, t := range s.tiers {
		if t.members.has(n) {
			return i
		}
	}
	return -1
}
