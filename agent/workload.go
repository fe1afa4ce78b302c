package agent

import (
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/spec"
)

// workloadKey names a Deployment.
type workloadKey struct{ namespace, name string }

// compiled is one Deployment of a revision compiled once, when the revision arrives: what
// the planner, the pacing, the executor, the probes, gossip and DNS need of it. Nothing
// downstream reads the manifests again.
type compiled struct {
	key workloadKey
	// d is the Deployment, kept for executor.Resolve and the planner, which take it whole.
	d *spec.Deployment
	// hash is spec.InstanceHash of the Deployment: the planner's and the executor's.
	hash string
	// replicas is how many it asks for, for status.
	replicas int
	// hostPorts are the ports its instances hold on their node; ports the same with their
	// names, as gossip publishes them; containerPorts as the manifest lists them.
	hostPorts      []spec.HostPort
	ports          []gossip.Port
	containerPorts []spec.ContainerPort
	// grace is how long a stop waits before it kills.
	grace time.Duration
	// minReady is how long an instance runs before it counts as ready.
	minReady time.Duration
	// containers are the names and images of its init containers, then its app
	// containers, in manifest order: the order they start in.
	containers []containerImage
	// labels are the pod template's labels, which Services select on.
	labels map[string]string
	// set is the revision the Deployment comes from, which its ConfigMaps and Secrets are
	// resolved in, and commit that revision's commit: the desired one, or an earlier one
	// for a Deployment whose failed rollout was reverted.
	set    *spec.Set
	commit string
	// progressDeadline is how long a rollout may go without progress before it fails;
	// autoRevert says whether a failed rollout goes back to the last good spec.
	progressDeadline time.Duration
	autoRevert       bool
}

type containerImage struct {
	name, image string
	// init is the container's place (from 1) among the init containers, 0 for an app
	// container; sidecar marks an init container that keeps running (restartPolicy Always).
	init    int
	sidecar bool
}

// compile compiles every Deployment of a revision, for a cluster with or without a pod network.
func compile(desired *spec.Desired, podNetwork bool) map[workloadKey]*compiled {
	set, rev := desired.Objects, desired.Revision
	out := make(map[workloadKey]*compiled, len(set.Deployments))
	for _, d := range set.Deployments {
		k := workloadKey{d.Metadata.Namespace, d.Metadata.Name}
		w := &compiled{
			key: k, d: d, hash: spec.InstanceHash(set, d), replicas: int(*d.Spec.Replicas),
			grace:    30 * time.Second,
			minReady: time.Duration(d.Spec.MinReadySeconds) * time.Second,
			labels:   d.Spec.Template.Metadata.Labels,
			set:      set, commit: rev.Commit,
			progressDeadline: 600 * time.Second,
			autoRevert:       d.Metadata.Annotations[AutoRevertAnnotation] != "false",
		}
		if p := d.Spec.ProgressDeadlineSeconds; p != nil {
			w.progressDeadline = time.Duration(*p) * time.Second
		}
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			w.grace = time.Duration(*g) * time.Second
		}
		w.hostPorts = d.Spec.Template.Spec.HostPorts(podNetwork)
		ps := &d.Spec.Template.Spec
		for i, c := range ps.AllContainers() {
			ci := containerImage{name: c.Name, image: c.Image}
			if i < len(ps.InitContainers) {
				ci.init, ci.sidecar = i+1, c.IsSidecar()
			}
			w.containers = append(w.containers, ci)
			for _, p := range c.Ports {
				hp := p.AsHostPort()
				w.ports = append(w.ports, gossip.Port{Name: p.Name, Port: hp.Port, Protocol: hp.Protocol})
				w.containerPorts = append(w.containerPorts, p)
			}
		}
		out[k] = w
	}
	return out
}

// namedPort is the number of the container port called name, or 0.
func (w *compiled) namedPort(name string) int32 {
	n, _ := spec.NamedPort(w.containerPorts, name)
	return n
}

// newRecord is the record of an instance of w about to start.
func (w *compiled) newRecord(id, revision string, cfg *Config) *instance {
	in := &instance{
		id: id, namespace: w.key.namespace, workload: w.key.name,
		specHash: w.hash, revision: revision, grace: w.grace, minReady: w.minReady,
		startBackoff: cfg.StartBackoff, containers: map[string]*container{},
	}
	for _, c := range w.containers {
		in.containers[c.name] = &container{name: c.name, image: c.image, init: c.init, sidecar: c.sidecar, backoff: cfg.CrashBackoff, ready: true}
		in.order = append(in.order, c.name)
	}
	return in
}

// probeKinds sets which gating probes each container of in has, from its resolved spec,
// and makes a gated container unready until its probes say otherwise.
func probeKinds(in *instance, s *executor.InstanceSpec) {
	for _, cs := range s.Containers {
		c := in.containers[cs.Name]
		if c == nil {
			continue
		}
		c.hasReadiness, c.hasStartup = false, false
		for _, p := range cs.Probes {
			c.hasReadiness = c.hasReadiness || p.Kind == executor.ProbeReadiness
			c.hasStartup = c.hasStartup || p.Kind == executor.ProbeStartup
		}
		c.ready = !c.hasReadiness && !c.hasStartup // until the probes say so
	}
}
