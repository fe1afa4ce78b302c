package planner

import (
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func hostNetwork(d *spec.Deployment) { d.Spec.Template.Spec.HostNetwork = true }

func hostPathVolume(p string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes,
			spec.Volume{Name: "v", HostPath: &spec.HostPathVolumeSource{Path: p}})
	}
}

func securityContext(sc spec.SecurityContext) func(*spec.Deployment) {
	return func(d *spec.Deployment) { d.Spec.Template.Spec.Containers[0].SecurityContext = &sc }
}

// TestPermissionFilter: an instance goes only to a node whose permissions allow what it
// asks beyond the default sandbox; a node allowing nothing takes instances that ask nothing.
func TestPermissionFilter(t *testing.T) {
	yes := true
	cases := []struct {
		name    string
		mod     func(*spec.Deployment)
		allowed Permissions // what n001 allows; n000 allows nothing
	}{
		{"hostNetwork", hostNetwork, Permissions{Allow: AllowHostNetwork}},
		{"hostPID", func(d *spec.Deployment) { d.Spec.Template.Spec.HostPID = true }, Permissions{Allow: AllowHostPID}},
		{"hostIPC", func(d *spec.Deployment) { d.Spec.Template.Spec.HostIPC = true }, Permissions{Allow: AllowHostIPC}},
		{"privileged", securityContext(spec.SecurityContext{Privileged: &yes}), Permissions{Allow: AllowPrivileged}},
		{"unconfined", securityContext(spec.SecurityContext{SeccompProfile: &spec.SeccompProfile{Type: spec.SeccompUnconfined}}), Permissions{Allow: AllowSeccompUnconfined}},
		{"localhost", securityContext(spec.SecurityContext{SeccompProfile: &spec.SeccompProfile{Type: spec.SeccompLocalhost}}), Permissions{Allow: AllowSeccompLocalhost}},
		{"hostPath under a prefix", hostPathVolume("/var/log/app/../app"), Permissions{HostPaths: []string{"/var/log"}}},
		{"hostPath anywhere", hostPathVolume("/etc"), Permissions{HostPaths: []string{"/"}}},
		{"capability", securityContext(spec.SecurityContext{Capabilities: &spec.Capabilities{Add: []string{"net_admin"}}}), Permissions{Capabilities: []string{"CAP_NET_ADMIN"}}},
		{"capability ALL", securityContext(spec.SecurityContext{Capabilities: &spec.Capabilities{Add: []string{"ALL"}}}), Permissions{Capabilities: []string{"all"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodes := cluster(2, 1)
			nodes[1].Permissions = c.allowed
			p := plan(desired(dep("w", 3, c.mod)), View{Nodes: nodes})
			if len(p.Assignments) != 3 {
				t.Fatalf("assignments %+v, want all 3 placed", p.Assignments)
			}
			for _, a := range p.Assignments {
				if a.Node != "n001" {
					t.Fatalf("assignments %+v, want every replica on n001 (the node that allows it)", p.Assignments)
				}
			}
			// Denied everywhere: unplaced, with the reason.
			nodes[1].Permissions = Permissions{}
			p = plan(desired(dep("w", 1, c.mod)), View{Nodes: nodes})
			if len(p.Assignments) != 0 || len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Reason, "2 node(s) didn't allow") {
				t.Fatalf("on nodes that allow nothing: %+v %+v, want unplaced because 2 node(s) didn't allow it", p.Assignments, p.Unplaced)
			}
		})
	}
}

// TestHostPortPermission: a hostPort takes a port of the node, so it goes only to a node
// that allows hostPorts (one replica a node: the port is a node resource).
func TestHostPortPermission(t *testing.T) {
	withHostPort := func(d *spec.Deployment) {
		d.Spec.Template.Spec.Containers[0].Ports = []spec.ContainerPort{{ContainerPort: 8080, HostPort: 22}}
	}
	nodes := cluster(3, 1)
	nodes[1].Permissions = Permissions{Allow: AllowHostPort}
	p := New(nil).WithPodNetwork(true).Plan(desired(dep("w", 2, withHostPort)), View{Nodes: nodes})
	if len(p.Assignments) != 1 || p.Assignments[0].Node != "n001" || len(p.Unplaced) != 1 ||
		!strings.Contains(p.Unplaced[0].Reason, "2 node(s) didn't allow hostPort (--allow-host-port)") {
		t.Fatalf("assignments %+v unplaced %+v; want one on n001, the other unplaced for hostPort", p.Assignments, p.Unplaced)
	}
}

// TestPermissionReason words the refusal as kube-scheduler does, naming the field, and
// counts the nodes refusing for each reason.
func TestPermissionReason(t *testing.T) {
	nodes := cluster(3, 1)
	nodes[2].Permissions = Permissions{Allow: AllowHostNetwork}
	nodes[2].MaxInstances = 1
	p := plan(desired(dep("w", 2, hostNetwork)), View{Nodes: nodes})
	if len(p.Assignments) != 1 || p.Assignments[0].Node != "n002" {
		t.Fatalf("assignments %+v, want one on n002", p.Assignments)
	}
	want := "0/3 nodes are available: 2 node(s) didn't allow hostNetwork (--allow-host-network), 1 too many instances (each runs its maximum; used most by default/w)."
	if len(p.Unplaced) != 1 || p.Unplaced[0].Reason != want {
		t.Fatalf("unplaced %+v, want %q", p.Unplaced, want)
	}
	// A node allowing a different directory refuses a hostPath outside it, and a prefix
	// is a directory, not a string prefix.
	nodes[2].Permissions = Permissions{HostPaths: []string{"/data"}}
	p = plan(desired(dep("w", 1, hostPathVolume("/database"))), View{Nodes: nodes})
	if want := "0/3 nodes are available: 3 node(s) didn't allow the hostPath volumes (--allow-host-path)."; len(p.Unplaced) != 1 || p.Unplaced[0].Reason != want {
		t.Fatalf("unplaced %+v, want %q", p.Unplaced, want)
	}
}

// TestPermissionsStopRunningInstance: an instance running on a node that no longer allows
// it (its agent restarted with stricter flags) does not keep its place: it moves to a node
// that allows it, and the stop says why.
func TestPermissionsStopRunningInstance(t *testing.T) {
	nodes := cluster(2, 1)
	nodes[0].Permissions = Permissions{Allow: AllowHostNetwork}
	d := desired(dep("w", 1, hostNetwork))
	p := plan(d, View{Nodes: nodes})
	if len(p.Assignments) != 1 || p.Assignments[0].Node != "n000" {
		t.Fatalf("assignments %+v, want n000", p.Assignments)
	}
	nodes[0].Permissions, nodes[1].Permissions = Permissions{}, Permissions{Allow: AllowHostNetwork}
	p = plan(d, View{Nodes: nodes, Instances: running(p)})
	if len(p.Assignments) != 1 || p.Assignments[0].Node != "n001" {
		t.Fatalf("assignments %+v, want the instance moved to n001", p.Assignments)
	}
	if len(p.Stop) != 1 || p.Stop[0].Instance.Node != "n000" || !strings.Contains(p.Stop[0].Reason, "didn't allow hostNetwork") {
		t.Fatalf("stops %+v, want the copy on n000 stopped because the node didn't allow hostNetwork", p.Stop)
	}
}

// TestDefaultCapabilitiesNeedNoPermission: adding back a capability of the default set
// takes nothing from the node.
func TestDefaultCapabilitiesNeedNoPermission(t *testing.T) {
	p := plan(desired(dep("w", 1, securityContext(spec.SecurityContext{Capabilities: &spec.Capabilities{
		Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE", "chown"}}}))), View{Nodes: cluster(1, 1)})
	if len(p.Assignments) != 1 {
		t.Fatalf("unplaced %+v, want placed", p.Unplaced)
	}
}
