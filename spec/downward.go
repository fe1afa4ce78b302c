package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// The Downward API: what an instance may learn about itself through env fieldRef and
// resourceFieldRef, and through downwardAPI volumes and projections. The lists are
// Kubernetes' own (pkg/apis/core/validation), so a manifest valid there is valid here.

// EnvFieldPaths are the fieldRef paths an env var may name, besides
// metadata.labels['key'] and metadata.annotations['key'].
var EnvFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid",
	"spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// VolumeFieldPaths are the fieldRef paths a downwardAPI file may name, besides
// metadata.labels['key'] and metadata.annotations['key']. The node and the addresses are
// env-only, as in Kubernetes; the whole label and annotation maps are volume-only.
var VolumeFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
}

// Paths of the label and annotation maps, which a subscript picks one key of.
const (
	FieldLabels      = "metadata.labels"
	FieldAnnotations = "metadata.annotations"
)

// ContainerResources are the resources a resourceFieldRef may name.
var ContainerResources = []string{
	"limits.cpu", "limits.memory", "limits.ephemeral-storage",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage",
}

// ResourceEphemeralStorage is the local disk a container may use. Shoal neither
// schedules nor limits by it; a resourceFieldRef can report it.
const ResourceEphemeralStorage = "ephemeral-storage"

// Divisors Kubernetes accepts for a resourceFieldRef, by resource, compared by value as
// Kubernetes compares them (1024Ki is 1Mi). Kubernetes also takes 1E and 1Ei, which are
// beyond what a Shoal quantity holds (every limit is far below them).
var (
	cpuDivisors  = []string{"1m", "1"}
	byteDivisors = []string{"1", "1k", "1M", "1G", "1T", "1P", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi"}
)

// SplitFieldPath splits metadata.labels['key'] into metadata.labels and key; subscripted
// is false for a path without a subscript, which comes back whole.
func SplitFieldPath(fieldPath string) (base, key string, subscripted bool) {
	s, ok := strings.CutSuffix(fieldPath, "']")
	if !ok {
		return fieldPath, "", false
	}
	base, key, ok = strings.Cut(s, "['")
	if !ok || base == "" {
		return fieldPath, "", false
	}
	return base, key, true
}

// validateObjectField checks a fieldRef against paths (EnvFieldPaths or VolumeFieldPaths).
func validateObjectField(r *report, p *fieldPath, f *ObjectFieldSelector, paths []string) {
	if f.APIVersion != "" && f.APIVersion != APIVersionCore {
		r.errorf(p.child("apiVersion"), "unsupported value %q: supported values are v1", f.APIVersion)
	}
	fp := p.child("fieldPath")
	base, key, subscripted := SplitFieldPath(f.FieldPath)
	switch {
	case f.FieldPath == "":
		r.errorf(fp, msgRequired)
	case subscripted && (base == FieldLabels || base == FieldAnnotations):
		if why := qualifiedName(strings.ToLower(key)); why != "" {
			r.errorf(fp, "invalid key %q in %s: %s", key, f.FieldPath, why)
		}
	case subscripted:
		r.errorf(fp, "unsupported value %q: only metadata.labels and metadata.annotations take a ['key'] subscript", f.FieldPath)
	case !slices.Contains(paths, f.FieldPath):
		where := ""
		switch {
		case slices.Contains(VolumeFieldPaths, f.FieldPath):
			where = fmt.Sprintf(" (%s is for downwardAPI volumes only; env takes one key: %s['key'])", f.FieldPath, f.FieldPath)
		case slices.Contains(EnvFieldPaths, f.FieldPath):
			where = fmt.Sprintf(" (%s is for env only)", f.FieldPath)
		}
		r.errorf(fp, "unsupported value %q%s: supported values are %s, metadata.labels['key'] and metadata.annotations['key']",
			f.FieldPath, where, strings.Join(paths, ", "))
	}
}

// validateResourceField checks a resourceFieldRef; a volume's must name its container,
// and the name must be one of the pod's containers.
func validateResourceField(r *report, p *fieldPath, f *ResourceFieldSelector, containers []Container, volume bool) {
	cp := p.child("containerName")
	switch {
	case f.ContainerName == "" && volume:
		r.errorf(cp, "required in a volume: the container whose resources to report")
	case f.ContainerName != "" && !slices.ContainsFunc(containers, func(c Container) bool { return c.Name == f.ContainerName }):
		r.errorf(cp, "container %q is not one of the instance's containers", f.ContainerName)
	}
	r.oneOf(p.child("resource"), f.Resource, ContainerResources...)
	if f.Divisor == nil || !slices.Contains(ContainerResources, f.Resource) {
		return
	}
	dp := p.child("divisor")
	divisors := byteDivisors
	if strings.HasSuffix(f.Resource, "."+ResourceCPU) {
		divisors = cpuDivisors
	}
	switch d := f.Divisor; {
	case d.Err() != nil:
		r.errorf(dp, "invalid quantity %q", d.String())
	case !slices.ContainsFunc(divisors, func(s string) bool { return MustQuantity(s).MilliValue() == d.MilliValue() }):
		r.errorf(dp, "unsupported value %q for %s: supported values are %s", d.String(), f.Resource, strings.Join(divisors, ", "))
	}
}

// paths finds two files of one volume at the same path, as Kubernetes refuses them. Only
// paths the manifest names are known here; a whole ConfigMap or Secret projected without
// items is checked when the instance is resolved.
type paths map[string]bool

func (ps paths) check(r *report, p *fieldPath, path string) {
	if path == "" {
		return
	}
	clean := strings.TrimPrefix(strings.TrimSuffix(path, "/"), "./")
	if ps[clean] {
		r.errorf(p, "duplicate path %q in the volume", path)
	}
	ps[clean] = true
}

// validateDownwardFiles checks the items of a downwardAPI volume or projection.
func validateDownwardFiles(r *report, p *fieldPath, items []DownwardAPIVolumeFile, containers []Container, seen paths) {
	for i := range items {
		it := &items[i]
		ip := p.at(i)
		if r.name(ip.child("path"), it.Path, relativePath, true) {
			seen.check(r, ip.child("path"), it.Path)
		}
		r.fileMode(ip.child("mode"), it.Mode)
		if n := count(it.FieldRef != nil, it.ResourceFieldRef != nil); n != 1 {
			r.errorf(ip, "must have exactly one of fieldRef and resourceFieldRef, has %d", n)
		}
		if it.FieldRef != nil {
			validateObjectField(r, ip.child("fieldRef"), it.FieldRef, VolumeFieldPaths)
		}
		if it.ResourceFieldRef != nil {
			validateResourceField(r, ip.child("resourceFieldRef"), it.ResourceFieldRef, containers, true)
		}
	}
}

// validateProjected checks a projected volume: one source per entry, and the sources
// Shoal cannot fill (a service account token, a cluster trust bundle) warned about.
func validateProjected(r *report, p *fieldPath, v *ProjectedVolumeSource, containers []Container) {
	r.fileMode(p.child("defaultMode"), v.DefaultMode)
	seen := paths{}
	items := func(p *fieldPath, items []KeyToPath) {
		for i, it := range items {
			seen.check(r, p.at(i).child("path"), it.Path)
		}
	}
	for i := range v.Sources {
		s := &v.Sources[i]
		sp := p.child("sources").at(i)
		if n := count(s.ConfigMap != nil, s.Secret != nil, s.DownwardAPI != nil, s.ServiceAccountToken != nil, s.ClusterTrustBundle != nil); n != 1 {
			r.errorf(sp, "must have exactly one of configMap, secret, downwardAPI, serviceAccountToken and clusterTrustBundle, has %d", n)
		}
		if cm := s.ConfigMap; cm != nil {
			cp := sp.child("configMap")
			r.name(cp.child("name"), cm.Name, dns1123Subdomain, true)
			validateKeyToPaths(r, cp.child("items"), cm.Items)
			items(cp.child("items"), cm.Items)
		}
		if sec := s.Secret; sec != nil {
			cp := sp.child("secret")
			r.name(cp.child("name"), sec.Name, dns1123Subdomain, true)
			validateKeyToPaths(r, cp.child("items"), sec.Items)
			items(cp.child("items"), sec.Items)
		}
		if d := s.DownwardAPI; d != nil {
			validateDownwardFiles(r, sp.child("downwardAPI").child("items"), d.Items, containers, seen)
		}
		// Kubernetes mounts a token for its own API (and kubectl exports it as the
		// kube-api-access volume); Shoal has no such API, so the token could only fail.
		// The app finds no file and says so: a warning, not a refused commit.
		if t := s.ServiceAccountToken; t != nil {
			tp := sp.child("serviceAccountToken")
			r.name(tp.child("path"), t.Path, relativePath, true)
			r.warnf(tp, "not honoured: Shoal has no Kubernetes API to issue a service account token for; file %q is not written", t.Path)
		}
		if b := s.ClusterTrustBundle; b != nil {
			bp := sp.child("clusterTrustBundle")
			r.name(bp.child("path"), b.Path, relativePath, true)
			r.warnf(bp, "not honoured: Shoal has no ClusterTrustBundle objects; file %q is not written", b.Path)
		}
	}
}

// unsupportedVolumeSources are the Kubernetes volume sources Shoal does not honour
// (persistentVolumeClaim, nfs, csi, ...): the fields of Kubernetes' Volume that
// Shoal's lacks. The decoder refuses each (typePolicies); validation counts them as
// sources, so that a volume with one is not also said to have none.
var unsupportedVolumeSources = func() []string {
	shoal := structInfos[reflect.TypeFor[Volume]()]
	var out []string
	for i := range k8sTypes {
		if k8sTypes[i].name != "core/v1.Volume" {
			continue
		}
		for _, f := range k8sTypes[i].fields {
			if _, known := shoal.byName[f.name]; !known {
				out = append(out, f.name)
			}
		}
	}
	return out
}()

// supportedVolumeSources names, for messages, the volume sources Shoal honours.
const supportedVolumeSources = "configMap, secret, emptyDir, hostPath, downwardAPI and projected"
