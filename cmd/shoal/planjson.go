package main

import (
	"encoding/json"
	"io"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// planReport is the `-o json` document of `shoal plan`. Its field names are stable: tools
// may rely on them. Like the text output, it never holds a Secret's values, annotations or labels.
type planReport struct {
	From planSide `json:"from"`
	To   planSide `json:"to"`
	// Changes are in kind, namespace, name order.
	Changes []planChange `json:"changes"`
	Summary planSummary  `json:"summary"`
	// Warnings are those of the new side that the old side did not have.
	Warnings spec.Diagnostics `json:"warnings"`
	// Errors are the findings of a side whose manifests are invalid (exit status 2).
	Errors spec.Diagnostics `json:"errors,omitempty"`
	// LostPlacements are, with --cluster or --cluster-from, the Deployments that would have
	// fewer replicas placed on that cluster than with the base revision (exit status 1),
	// in namespace and name order; [] when none would. Absent without a cluster.
	LostPlacements []planLost `json:"lostPlacements,omitzero"`
}

// planLost is a planner.LostPlacement: a Deployment that would lose placed replicas.
type planLost struct {
	objectRef
	// Before and After count its placed replicas with each revision; Lost is how many it
	// still wants that the new revision leaves unplaced.
	Before int `json:"before"`
	After  int `json:"after"`
	Lost   int `json:"lost"`
	// Reason is why its first unplaced replica has no node, naming the port or resource
	// the nodes lack and the workloads that hold it.
	Reason string `json:"reason"`
}

// planSide is one side of the comparison: where it was read and, for a Git revision, which commit.
type planSide struct {
	Where    string         `json:"where"`
	Revision *spec.Revision `json:"revision,omitempty"`
}

// objectRef names an object: kind, namespace (absent for Namespaces) and name.
type objectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// planChange is a planner.Change.
type planChange struct {
	Action string `json:"action"` // create, update or delete
	objectRef
	Fields []planField `json:"fields"`
	// Instances: for a Deployment whose instances are replaced, how many replace them.
	Instances int `json:"instances,omitempty"`
	// Config: for such a Deployment, the changed ConfigMaps and Secrets it uses.
	Config []objectRef `json:"config,omitempty"`
	// Replaces: for a ConfigMap or Secret, the Deployments its change replaces.
	Replaces []planReplacement `json:"replaces,omitempty"`
}

// planField is one changed field; old and new are compact JSON, "" when absent.
type planField struct {
	Path string `json:"path"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// planReplacement is a Deployment that a config change replaces, with its instance count.
type planReplacement struct {
	objectRef
	Instances int `json:"instances"`
}

type planSummary struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

func ref(k spec.Key) objectRef { return objectRef{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name} }

func planSideOf(m manifests) planSide { return planSide{Where: m.where, Revision: m.revision} }

// newPlanReport turns a diff, its new warnings and, given a cluster, both revisions'
// placements on it into the JSON document.
func newPlanReport(before, after manifests, changes []planner.Change, warnings spec.Diagnostics, placed *placements) planReport {
	r := planReport{From: planSideOf(before), To: planSideOf(after), Changes: []planChange{}, Warnings: nonNil(warnings)}
	if placed != nil {
		r.LostPlacements = []planLost{}
		for _, l := range placed.lost {
			r.LostPlacements = append(r.LostPlacements, planLost{objectRef: objectRef{Kind: spec.KindDeployment, Namespace: l.Namespace, Name: l.Workload},
				Before: l.Before, After: l.After, Lost: l.Lost, Reason: l.Reason})
		}
	}
	for _, c := range changes {
		pc := planChange{Action: string(c.Action), objectRef: ref(c.Key), Fields: []planField{}, Instances: c.Instances}
		for _, f := range c.Fields {
			pc.Fields = append(pc.Fields, planField{Path: f.Path, Old: f.Old, New: f.New})
		}
		for _, k := range c.Config {
			pc.Config = append(pc.Config, ref(k))
		}
		for _, rp := range c.Replaces {
			pc.Replaces = append(pc.Replaces, planReplacement{objectRef: ref(rp.Deployment), Instances: rp.Instances})
		}
		switch c.Action {
		case planner.ActionCreate:
			r.Summary.Create++
		case planner.ActionUpdate:
			r.Summary.Update++
		case planner.ActionDelete:
			r.Summary.Delete++
		}
		r.Changes = append(r.Changes, pc)
	}
	return r
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
