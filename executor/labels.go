package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"regexp"
	"strconv"
	"time"
)

// Labels Shoal puts on every container it creates. They are the only record of what an
// instance is: a restarted agent rebuilds its view from them (List), and a container
// without LabelInstance is never touched.
const (
	LabelPrefix    = "io.shoal."
	LabelNamespace = LabelPrefix + "namespace"
	LabelWorkload  = LabelPrefix + "workload"
	LabelInstance  = LabelPrefix + "instance"
	LabelContainer = LabelPrefix + "container"
	LabelSpecHash  = LabelPrefix + "spec-hash"
	LabelRevision  = LabelPrefix + "revision"
	LabelNode      = LabelPrefix + "node"
	// LabelGrace is the instance's grace period (a Go duration), used by Restart.
	LabelGrace = LabelPrefix + "grace"
	// LabelRestarts counts Restart calls, so the count survives an agent restart.
	LabelRestarts = LabelPrefix + "restarts"
	// LabelAddr is the instance's address in its own network namespace; absent with
	// host networking. A restarted agent reads it back without asking the pod network.
	LabelAddr = LabelPrefix + "addr"
	// LabelInit is an init container's place (from 1) among the instance's init
	// containers; absent on app containers. LabelSidecar is "true" on a sidecar. Stop
	// reads them to stop sidecars last, and a restarted agent to know what ran to
	// completion (an init container is never run again for an instance that exists).
	LabelInit    = LabelPrefix + "init"
	LabelSidecar = LabelPrefix + "sidecar"
)

// instanceLabels are the labels of one container of s; addr is the instance's address,
// invalid with host networking.
func instanceLabels(s *InstanceSpec, container string, addr netip.Addr) map[string]string {
	l := map[string]string{
		LabelNamespace: s.Namespace,
		LabelWorkload:  s.Workload,
		LabelInstance:  s.ID,
		LabelContainer: container,
		LabelSpecHash:  s.SpecHash,
		LabelRevision:  s.Revision,
		LabelNode:      s.Node,
		LabelGrace:     s.GracePeriod.String(),
		LabelRestarts:  "0",
	}
	if addr.IsValid() {
		l[LabelAddr] = addr.String()
	}
	if cs, ok := s.Container(container); ok && cs.Init > 0 {
		l[LabelInit] = strconv.Itoa(cs.Init)
		if cs.Sidecar {
			l[LabelSidecar] = "true"
		}
	}
	return l
}

// roleFromLabels reads LabelInit and LabelSidecar back; a mangled LabelInit reads as an
// app container.
func roleFromLabels(l map[string]string) (init int, sidecar bool) {
	n, err := strconv.Atoi(l[LabelInit])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, n > 0 && l[LabelSidecar] == "true"
}

// instanceFromLabels reads the instance part of InstanceState back from a container's labels.
func instanceFromLabels(l map[string]string) InstanceState {
	grace, _ := time.ParseDuration(l[LabelGrace]) // a mangled label means no grace: SIGKILL at once
	addr, _ := netip.ParseAddr(l[LabelAddr])      // absent (host networking) or mangled: no address
	return InstanceState{
		ID:          l[LabelInstance],
		Namespace:   l[LabelNamespace],
		Workload:    l[LabelWorkload],
		SpecHash:    l[LabelSpecHash],
		Revision:    l[LabelRevision],
		Node:        l[LabelNode],
		GracePeriod: grace,
		Addr:        addr,
	}
}

// restartsFromLabels reads LabelRestarts; a missing or mangled label counts as 0.
func restartsFromLabels(l map[string]string) int {
	n, _ := strconv.Atoi(l[LabelRestarts])
	return n
}

// containerd identifiers: alphanumeric components joined by '.', '_' or '-', at most 76 bytes.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

const maxIdentifier = 76

// RuntimeID is the containerd container ID of one container of an instance:
// "<instance>.<container>" when that is a valid identifier, else a hash of both. Nothing
// parses it back; labels say what a container is.
func RuntimeID(instanceID, container string) string {
	id := instanceID + "." + container
	if len(id) <= maxIdentifier && identifierRE.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(instanceID + "/" + container))
	return "shoal-" + hex.EncodeToString(sum[:16])
}
