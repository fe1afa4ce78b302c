package planner

import (
	"slices"
	"strconv"
	"strings"
)

// namedHolders is how many workloads a reason names as holding what a replica lacks;
// the rest are counted ("and 4 more"), so that a reason stays one readable line.
const namedHolders = 3

// holding is how much of what a replica lacks one workload holds on the refusing nodes:
// millicores, bytes, instances, or nodes where it holds a port.
type holding struct {
	w      *workload
	amount int64
}

// holders keeps the namedHolders biggest holdings offered to it, and counts them all.
// Offered in namespace and name order, equal holdings keep that order.
type holders struct {
	top   [namedHolders]holding
	count int
}

// offer counts w's holding, if any, and keeps it when among the biggest so far.
func (h *holders) offer(w *workload, amount int64) {
	if amount <= 0 {
		return
	}
	i := min(h.count, namedHolders)
	h.count++
	for i > 0 && h.top[i-1].amount < amount {
		if i < namedHolders {
			h.top[i] = h.top[i-1]
		}
		i--
	}
	if i < namedHolders {
		h.top[i] = holding{w, amount}
	}
}

// String names the biggest holders and counts the rest: "default/a, default/b and 2 more".
func (h *holders) String() string {
	var b strings.Builder
	for i, hd := range h.top[:min(h.count, namedHolders)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(hd.w.ns + "/" + hd.w.name)
	}
	if more := h.count - namedHolders; more > 0 {
		b.WriteString(" and " + strconv.Itoa(more) + " more")
	}
	return b.String()
}

// usedMostBy is "; used most by " and the biggest holders, or "" when nothing placed
// holds any: the nodes are too small on their own.
func (h *holders) usedMostBy() string {
	if h.count == 0 {
		return ""
	}
	return "; used most by " + h.String()
}

// refusalDetails words, for the refusals over a port or a resource among counts, what the
// replica of w lacks on the nodes that refused it for that reason and which workloads hold
// it there (from st.refusals, as scan left it): "host port 8080/TCP held by default/web".
// It runs only once no node takes a replica, never while one is being placed. Nil when no
// such refusal is counted.
func (st *state) refusalDetails(w *workload, counts *[numReasons]int) *[numReasons]string {
	byPort, byCPU, byMem, byInst := counts[portConflict] > 0, counts[insufficientCPU] > 0, counts[insufficientMemory] > 0, counts[tooManyInstances] > 0
	if !byPort && !byCPU && !byMem && !byInst {
		return nil
	}
	var d [numReasons]string
	if byPort {
		d[portConflict] = st.portsDetail(w)
	}
	if byCPU || byMem || byInst {
		cpu, mem, inst := st.resourceHolders()
		if byCPU {
			d[insufficientCPU] = "less than " + milliCPUText(w.req.MilliCPU) + " free on each" + cpu.usedMostBy()
		}
		if byMem {
			d[insufficientMemory] = "less than " + bytesText(w.req.MemoryBytes) + " free on each" + mem.usedMostBy()
		}
		if byInst {
			d[tooManyInstances] = "each runs its maximum" + inst.usedMostBy()
		}
	}
	return &d
}

// portsDetail names each of w's ports that a node refusing w for its ports holds, and
// the workloads holding it there: "host port 53/UDP held by kube-system/dns; host port
// 8080/TCP held by default/web". Few workloads hold any given port: only their slots are
// read.
func (st *state) portsDetail(w *workload) string {
	byPort := make([]holders, len(w.ports))
	for _, x := range st.workloads {
		if !sharesPort(w.ports, x.ports) {
			continue
		}
		for j, p := range w.ports {
			if !slices.Contains(x.ports, p) {
				continue
			}
			var nodes int64
			for i := range x.slots {
				if n := x.slots[i].node; n >= 0 && st.refusals[n] == portConflict {
					nodes++
				}
			}
			byPort[j].offer(x, nodes)
		}
	}
	var parts []string
	for j, p := range w.ports {
		if byPort[j].count > 0 {
			parts = append(parts, "host port "+portText(p)+" held by "+byPort[j].String())
		}
	}
	if len(parts) > namedHolders {
		parts = append(parts[:namedHolders], "and "+strconv.Itoa(len(parts)-namedHolders)+" more ports")
	}
	return strings.Join(parts, "; ")
}

// resourceUse counts one workload's instances on the nodes that refused a replica for
// want of cpu, of memory, and of room for one more instance.
type resourceUse struct {
	onCPU, onMemory, onInstances int64
}

// resourceHolders sums, per workload, the cpu its instances reserve on the nodes that
// refused for want of cpu, the memory on those refusing for memory, and its instances on
// those refusing for their instance limit. It reads the instances of the refusing nodes
// only, from st.residents.
func (st *state) resourceHolders() (cpu, mem, inst holders) {
	st.indexResidents()
	if st.use == nil {
		st.use = make([]resourceUse, len(st.workloads))
	}
	for n, why := range st.refusals {
		if why != insufficientCPU && why != insufficientMemory && why != tooManyInstances {
			continue
		}
		for _, i := range st.residents[n] {
			switch u := &st.use[i]; why {
			case insufficientCPU:
				u.onCPU++
			case insufficientMemory:
				u.onMemory++
			default:
				u.onInstances++
			}
		}
	}
	for i, x := range st.workloads {
		u := st.use[i]
		st.use[i] = resourceUse{}
		cpu.offer(x, u.onCPU*x.req.MilliCPU)
		mem.offer(x, u.onMemory*x.req.MemoryBytes)
		inst.offer(x, u.onInstances)
	}
	return cpu, mem, inst
}

// indexResidents builds st.residents from the slots placed so far, the first time it is
// needed; reserve keeps it up to date from then on.
func (st *state) indexResidents() {
	if st.residents != nil {
		return
	}
	st.residents = make([][]int32, len(st.nodes))
	for _, w := range st.workloads {
		for s := range w.slots {
			if n := w.slots[s].node; n >= 0 {
				st.residents[n] = append(st.residents[n], w.index)
			}
		}
	}
}

// sharesPort reports whether a and b have a port in common.
func sharesPort(a, b []uint32) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return true
		}
	}
	return false
}

// portText spells a port as podPorts encodes it: "8080/TCP".
func portText(p uint32) string {
	return strconv.FormatUint(uint64(p>>2), 10) + "/" + [...]string{"TCP", "UDP", "SCTP", "?"}[p&3]
}

// milliCPUText spells millicores as a Kubernetes quantity: "500m", or "2" for whole cores.
func milliCPUText(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// bytesText spells bytes as a Kubernetes quantity in the largest binary unit that divides
// them: "256Mi", "1536Ki", "1000".
func bytesText(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
