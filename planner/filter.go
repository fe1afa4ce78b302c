package planner

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// reason is why a filter refused a node; fits means none did.
type reason uint8

// The filters, in the order they run: cheap and static first.
const (
	fits reason = iota
	notAlive
	nodeSelectorMismatch
	nodeAffinityMismatch
	disallowedHostNetwork
	disallowedHostPID
	disallowedHostIPC
	disallowedPrivileged
	disallowedSeccompLocalhost
	disallowedSeccompUnconfined
	disallowedHostPath
	disallowedCapability
	disallowedHostPort
	tooManyInstances
	insufficientCPU
	insufficientMemory
	portConflict
	antiAffinityMismatch
	existingAntiAffinity
	affinityMismatch
	spreadMissingLabel
	spreadSkew
	numReasons
)

// reasonText words each refusal as kube-scheduler does, so that users recognise them.
var reasonText = [numReasons]string{
	fits:                 "fits",
	notAlive:             "node(s) not alive",
	nodeSelectorMismatch: "node(s) didn't match node selector",
	nodeAffinityMismatch: "node(s) didn't match node affinity",
	// The node's agent flags (Permissions) refuse what the instance asks for; the
	// reason names the flag that would allow it.
	disallowedHostNetwork:       "node(s) didn't allow hostNetwork (--allow-host-network)",
	disallowedHostPID:           "node(s) didn't allow hostPID (--allow-host-pid)",
	disallowedHostIPC:           "node(s) didn't allow hostIPC (--allow-host-ipc)",
	disallowedPrivileged:        "node(s) didn't allow privileged containers (--allow-privileged)",
	disallowedSeccompLocalhost:  "node(s) didn't allow Localhost seccomp profiles (--seccomp-profile-root)",
	disallowedSeccompUnconfined: "node(s) didn't allow Unconfined seccomp (--allow-unconfined-seccomp)",
	disallowedHostPath:          "node(s) didn't allow the hostPath volumes (--allow-host-path)",
	disallowedCapability:        "node(s) didn't allow the added capabilities (--allow-capability)",
	disallowedHostPort:          "node(s) didn't allow hostPort (--allow-host-port)",
	tooManyInstances:            "too many instances",
	insufficientCPU:             "insufficient cpu",
	insufficientMemory:          "insufficient memory",
	portConflict:                "node(s) didn't have free ports for the requested ports",
	antiAffinityMismatch:        "node(s) didn't match pod anti-affinity rules",
	existingAntiAffinity:        "node(s) didn't satisfy existing instances' anti-affinity rules",
	affinityMismatch:            "node(s) didn't match pod affinity rules",
	spreadMissingLabel:          "node(s) didn't have the topology spread label",
	spreadSkew:                  "node(s) didn't match pod topology spread constraints",
}

// String words the reason for people.
func (r reason) String() string { return reasonText[r] }

// checkMode says which filters apply.
type checkMode uint8

const (
	// placing a replica: every filter.
	placing checkMode = iota
	// keeping a running instance: everything but pod affinity, which is checked once all
	// kept instances are known, and topology spread, which like Kubernetes' never evicts.
	keeping
)

// staticReason runs the filters that do not depend on what is placed.
func (st *state) staticReason(w *workload, n int32) reason {
	node := &st.nodes[n]
	switch {
	case !node.alive:
		return notAlive
	case !spec.MatchesLabels(w.d.Spec.Template.Spec.NodeSelector, node.labels):
		return nodeSelectorMismatch
	case !w.requiredNode.Matches(node.labels):
		return nodeAffinityMismatch
	}
	return node.perms.refusal(&w.needs)
}

// check runs the filters that depend on what is placed, for a node that passed the static ones.
func (st *state) check(w *workload, n int32, mode checkMode) reason {
	if st.count[n] >= st.nodes[n].maxInstances {
		return tooManyInstances
	}
	if r := fitResources(st.nodes[n].alloc, st.usedCPU[n], st.usedMem[n], w.req); r != fits {
		return r
	}
	if !portsFree(st.ports[n], w.ports) {
		return portConflict
	}
	for _, t := range w.antiOwn {
		if d := t.topo.dom[n]; d >= 0 && t.match[d] > 0 {
			return antiAffinityMismatch
		}
	}
	for _, t := range w.antiOf {
		if d := t.topo.dom[n]; d >= 0 && t.owners[d] > 0 {
			return existingAntiAffinity
		}
	}
	if mode == keeping {
		return fits
	}
	if !st.affinityHolds(w, n, false) {
		return affinityMismatch
	}
	for _, s := range w.spreads {
		if s.hard {
			if r := s.check(n); r != fits {
				return r
			}
		}
	}
	return fits
}

// fitResources is the resource filter: the requests must fit what the node has left. A
// zero request fits even a full node, as in Kubernetes.
func fitResources(alloc Resources, usedCPU, usedMem int64, req Resources) reason {
	if req.MilliCPU > 0 && usedCPU+req.MilliCPU > alloc.MilliCPU {
		return insufficientCPU
	}
	if req.MemoryBytes > 0 && usedMem+req.MemoryBytes > alloc.MemoryBytes {
		return insufficientMemory
	}
	return fits
}

// portsFree reports whether none of want (sorted) is in used.
func portsFree(used, want []uint32) bool {
	for _, p := range want {
		if slices.Contains(used, p) {
			return false
		}
	}
	return true
}

// affinityHolds checks w's required pod-affinity terms on node n: each needs a matching
// instance in n's domain. placed says w's instance already counts on n and must not
// satisfy its own term. The first instance of a group that matches its own term may go
// anywhere, as in Kubernetes, or a self-affine group could never start.
func (st *state) affinityHolds(w *workload, n int32, placed bool) bool {
	for _, a := range w.affinity {
		self := int32(0)
		if placed && a.self {
			self = 1
		}
		d := a.t.topo.dom[n]
		if d < 0 {
			return false
		}
		if a.t.match[d]-self > 0 {
			continue
		}
		if !(a.self && a.t.total-self == 0) {
			return false
		}
	}
	return true
}

// check is the DoNotSchedule filter: placing here must keep the domain within maxSkew of the
// emptiest domain the workload may use. Nodes without the topology label are refused.
func (s *spreadState) check(n int32) reason {
	d := s.t.topo.dom[n]
	if d < 0 {
		return spreadMissingLabel
	}
	if s.t.match[d]+s.self-s.min > s.maxSkew {
		return spreadSkew
	}
	return fits
}

// reserve books (delta 1) or releases (delta -1) node n for one instance of w.
func (st *state) reserve(w *workload, n int32, delta int32) {
	st.count[n] += delta
	st.usedCPU[n] += int64(delta) * w.req.MilliCPU
	st.usedMem[n] += int64(delta) * w.req.MemoryBytes
	if len(w.ports) > 0 {
		if delta > 0 {
			st.ports[n] = append(st.ports[n], w.ports...)
		} else {
			for _, p := range w.ports {
				i := slices.Index(st.ports[n], p)
				st.ports[n] = slices.Delete(st.ports[n], i, i+1)
			}
		}
	}
	if st.residents != nil {
		if delta > 0 {
			st.residents[n] = append(st.residents[n], w.index)
		} else {
			i := slices.Index(st.residents[n], w.index)
			st.residents[n] = slices.Delete(st.residents[n], i, i+1)
		}
	}
	for _, t := range w.contrib {
		t.add(n, delta)
	}
	for _, t := range w.antiOwn {
		if d := t.topo.dom[n]; d >= 0 {
			t.owners[d] += delta
		}
	}
}

// unavailable words why no node took a replica: "0/5 nodes are available: 3 insufficient
// memory (less than 1Gi free on each; used most by default/db), 2 node(s) didn't match pod
// anti-affinity rules." Most common reason first; details (see refusalDetails), when not
// nil, follow their reason in parentheses.
func unavailable(counts *[numReasons]int, details *[numReasons]string, nodes int) string {
	var found []reason
	for r, c := range counts {
		if c > 0 {
			found = append(found, reason(r))
		}
	}
	slices.SortFunc(found, func(a, b reason) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a.String(), b.String()))
	})
	var b strings.Builder
	b.WriteString("0/" + strconv.Itoa(nodes) + " nodes are available")
	for i, r := range found {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(counts[r]) + " " + r.String())
		if details != nil && details[r] != "" {
			b.WriteString(" (" + details[r] + ")")
		}
	}
	b.WriteString(".")
	return b.String()
}
