package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Checks of each Service against the Deployments of its revision. Kubernetes accepts a
// Service whose selector matches no pods, or whose named targetPort no pod declares: it
// just has no endpoints. Both are almost always a typo, and found only when clients
// fail, so they are warnings here, located at the selector and the targetPort.

// selection is what a Service selects, and where, for checkSelections.
type selection struct {
	service  Key
	selector map[string]string
	at       position // spec.selector
	// ports are the Service's ports whose targetPort is a name.
	ports []namedTarget
}

// namedTarget is a Service port whose targetPort names a container port.
type namedTarget struct {
	name, protocol string
	at             position // spec.ports[i].targetPort
}

// objectSelection returns what o selects when it is a Service with a selector, located
// through r; nil otherwise.
func objectSelection(r *report, o Object) *selection {
	s, ok := o.(*Service)
	if !ok || len(s.Spec.Selector) == 0 || s.IsExternalName() {
		return nil
	}
	sp := root.child("spec")
	sel := &selection{service: s.Key(), selector: s.Spec.Selector, at: r.position(sp.child("selector"))}
	for i, port := range s.Spec.Ports {
		if tp := port.TargetPort; tp != nil && tp.IsString {
			sel.ports = append(sel.ports, namedTarget{name: tp.Str, protocol: port.Protocol,
				at: r.position(sp.child("ports").at(i).child("targetPort"))})
		}
	}
	return sel
}

// maxSelectionSteps bounds the work of checkSelections: a revision can have Services and
// Deployments whose labels make every Service a candidate for every Deployment, which
// would cost their product. Real revisions take about one step per Service.
const maxSelectionSteps = 1 << 20

// checkSelections warns about each Service that selects no Deployment's instances in its
// namespace, and about each named targetPort that no selected container port has (with
// the Service port's protocol, as Kubernetes matches it).
//
// Deployments are indexed by each label of their template, and a Service's candidates
// are the Deployments holding the rarest of its selector's labels, so each Service costs
// about the Deployments it selects. When candidates run past maxSelectionSteps in all,
// the remaining Services are not checked, and a warning says so.
func checkSelections(set *Set, sels []selection) Diagnostics {
	type label struct{ namespace, key, value string }
	byLabel := map[label][]*Deployment{}
	portProtocols := map[*Deployment]map[string]string{} // port name to protocol; names are unique in a pod
	for _, d := range set.Deployments {
		for k, v := range d.Spec.Template.Metadata.Labels {
			l := label{d.Metadata.Namespace, k, v}
			byLabel[l] = append(byLabel[l], d)
		}
		ports := map[string]string{}
		for _, c := range d.Spec.Template.Spec.AllContainers() {
			for _, p := range c.Ports {
				if p.Name != "" {
					ports[p.Name] = p.Protocol
				}
			}
		}
		portProtocols[d] = ports
	}
	var diags Diagnostics
	warnAt := func(at position, format string, args ...any) {
		diags = append(diags, Diagnostic{Severity: SeverityWarning, File: at.file, Line: at.line, Path: at.path, Message: fmt.Sprintf(format, args...)})
	}
	steps := 0
	for n, sel := range sels {
		var candidates []*Deployment
		for i, k := range slices.Sorted(maps.Keys(sel.selector)) {
			holders := byLabel[label{sel.service.Namespace, k, sel.selector[k]}]
			if i == 0 || len(holders) < len(candidates) {
				candidates = holders
			}
		}
		if steps += len(candidates) * (len(sel.selector) + len(sel.ports)); steps > maxSelectionSteps {
			warnAt(sel.at, "%d Services not checked for what they select: their selectors match too many Deployments to check them all", len(sels)-n)
			break
		}
		var selected []*Deployment
		for _, d := range candidates {
			if MatchesLabels(sel.selector, d.Spec.Template.Metadata.Labels) {
				selected = append(selected, d)
			}
		}
		if len(selected) == 0 {
			warnAt(sel.at, "selector %s matches no Deployment's pods in namespace %s: the Service has no endpoints", formatSelector(sel.selector), sel.service.Namespace)
			continue
		}
		for _, tp := range sel.ports {
			found, otherProtocol := false, ""
			for _, d := range selected {
				switch protocol, ok := portProtocols[d][tp.name]; {
				case ok && protocol == tp.protocol:
					found = true
				case ok:
					otherProtocol = protocol
				}
			}
			switch {
			case found:
			case otherProtocol != "":
				warnAt(tp.at, "targetPort %q names no %s containerPort of the pods this Service selects (%s): their port %q is %s",
					tp.name, tp.protocol, deploymentNames(selected), tp.name, otherProtocol)
			default:
				warnAt(tp.at, "targetPort %q names no containerPort of the pods this Service selects (%s)", tp.name, deploymentNames(selected))
			}
		}
	}
	return diags
}

// formatSelector renders a selector as kubectl does: app=web,tier=frontend.
func formatSelector(selector map[string]string) string {
	pairs := make([]string, 0, len(selector))
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		pairs = append(pairs, k+"="+selector[k])
	}
	return strings.Join(pairs, ",")
}

// maxNamesShown bounds the Deployments a message names.
const maxNamesShown = 3

// deploymentNames names the Deployments in key order, at most maxNamesShown of them:
// "web", "api, web", "a, b, c and 2 more".
func deploymentNames(ds []*Deployment) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Metadata.Name
	}
	slices.Sort(names)
	if len(names) <= maxNamesShown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamesShown], ", "), len(names)-maxNamesShown)
}
