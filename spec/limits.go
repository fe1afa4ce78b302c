package spec

import (
	"fmt"
	"strconv"
)

// Limits on what one revision may ask for, beyond its size in bytes (LoadOptions): a
// revision over any of them is rejected with the limit named, so that no commit can
// make a daemon plan for more than it can hold in memory. Each limit is named in
// messages by the flag that sets it in `shoal agent` and `shoal validate`.
const (
	limitFileBytes             = "max-file-bytes"
	limitRevisionBytes         = "max-revision-bytes"
	limitObjectsPerRevision    = "max-objects-per-revision"
	limitReplicasPerDeployment = "max-replicas-per-deployment"
	limitReplicasPerRevision   = "max-replicas-per-revision"
)

// usage is what one object counts against the revision's limits, and where: the
// object itself for the object count, its spec.replicas for the replica count.
type usage struct {
	object   position
	replicas int64
	at       position
}

// objectUsage checks o against the per-object limits, reporting through r, and returns
// what it counts against the revision's.
func objectUsage(r *report, o Object, opts LoadOptions) usage {
	u := usage{object: r.position(root)}
	d, ok := o.(*Deployment)
	if !ok || d.Spec.Replicas == nil {
		return u
	}
	p := root.child("spec").child("replicas")
	u.replicas, u.at = max(int64(*d.Spec.Replicas), 0), r.position(p)
	if u.replicas > opts.MaxReplicasPerDeployment {
		r.errorf(p, "%d replicas is over the limit of %s per Deployment (%s)",
			u.replicas, formatCount(opts.MaxReplicasPerDeployment), limitReplicasPerDeployment)
		// Counted at the limit, so that one error is not reported twice.
		u.replicas = opts.MaxReplicasPerDeployment
	}
	return u
}

// checkRevisionUsage adds up the usage of every object, in file and document order,
// and reports the object at which the revision goes over a limit.
func checkRevisionUsage(uses []usage, opts LoadOptions) Diagnostics {
	var diags Diagnostics
	if len(uses) > opts.MaxObjects {
		at := uses[opts.MaxObjects].object
		diags = append(diags, Diagnostic{Severity: SeverityError, File: at.file, Line: at.line,
			Message: fmt.Sprintf("the revision has %d objects, over the limit of %s (%s)",
				len(uses), formatCount(int64(opts.MaxObjects)), limitObjectsPerRevision)})
	}
	var total int64
	for _, u := range uses {
		if total += u.replicas; total > opts.MaxReplicasPerRevision {
			diags = append(diags, Diagnostic{Severity: SeverityError, File: u.at.file, Line: u.at.line, Path: u.at.path,
				Message: fmt.Sprintf("the revision asks for more than %s replicas in all Deployments (%s)",
					formatCount(opts.MaxReplicasPerRevision), limitReplicasPerRevision)})
			break
		}
	}
	return diags
}

// formatCount writes n with thousands separators, as limits read best.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
