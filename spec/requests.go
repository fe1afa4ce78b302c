package spec

// PodRequests is what an instance of the pod reserves on its node, as the Kubernetes
// scheduler counts it (KEP-753): the app containers and sidecars run together, so their
// requests add up; a regular init container runs alone but beside the sidecars started
// before it; the instance reserves the larger of the two, resource by resource. A
// container that gives only a limit requests its limit, as defaulting makes it.
func (ps *PodSpec) PodRequests() (milliCPU, memoryBytes int64) {
	var run, sidecars, initPeak [2]int64
	add := func(sum *[2]int64, c *Container) {
		sum[0] += containerRequest(c.Resources, ResourceCPU).MilliValue()
		sum[1] += containerRequest(c.Resources, ResourceMemory).Value()
	}
	for i := range ps.Containers {
		add(&run, &ps.Containers[i])
	}
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		var during [2]int64 // what runs while c starts or runs
		if c.IsSidecar() {
			add(&run, c)
			add(&sidecars, c)
			during = sidecars
		} else {
			during = sidecars
			add(&during, c)
		}
		initPeak[0], initPeak[1] = max(initPeak[0], during[0]), max(initPeak[1], during[1])
	}
	return max(run[0], initPeak[0]), max(run[1], initPeak[1])
}

func containerRequest(r Resources, name string) Quantity {
	if q, ok := r.Requests[name]; ok {
		return q
	}
	return r.Limits[name]
}
