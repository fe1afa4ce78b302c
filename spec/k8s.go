package spec

import (
	"sort"
	"strings"
)

//go:generate go run ./internal/k8sgen -o k8s_gen.go

// This file reads the tables k8s_gen.go holds about Kubernetes' own API: its
// kinds and, for the kinds Shoal loads, the json fields of every type. They are
// generated from k8s.io/api so that spec knows what Kubernetes accepts without
// importing it.

// k8sKind is one kind of a built-in API group in one version.
type k8sKind struct {
	apiVersion string
	kind       string
	// removed says the version no longer serves the kind.
	removed bool
}

// k8sObject is the type of one kind Shoal loads.
type k8sObject struct {
	apiVersion string
	kind       string
	typ        k8sTypeID
}

// k8sTypeID indexes k8sTypes.
type k8sTypeID uint16

// k8sClass is what JSON value a Kubernetes type is written as.
type k8sClass uint8

const (
	k8sStruct k8sClass = iota
	k8sList
	k8sMap
	k8sString
	k8sBool
	k8sInt
	k8sFloat
	k8sBytes
	k8sQuantity
	k8sIntOrString
	k8sTime
	// k8sAny is a value of any shape: an embedded object, managedFields' fieldsV1.
	k8sAny
)

// k8sType is one Kubernetes type: a struct with its fields, a list or map of its
// elem, or a scalar.
type k8sType struct {
	// name is the Go type as k8s.io/api spells it, e.g. "core/v1.PodSpec".
	name  string
	class k8sClass
	elem  k8sTypeID
	// fields are sorted by name.
	fields []k8sField
}

// k8sField is one json field of a Kubernetes struct.
type k8sField struct {
	name string
	typ  k8sTypeID
}

func (id k8sTypeID) get() *k8sType { return &k8sTypes[id] }

// field returns the type of struct id's field called name.
func (id k8sTypeID) field(name string) (k8sTypeID, bool) {
	fs := k8sTypes[id].fields
	i := sort.Search(len(fs), func(i int) bool { return fs[i].name >= name })
	if i < len(fs) && fs[i].name == name {
		return fs[i].typ, true
	}
	return 0, false
}

// k8sObjectType returns the Kubernetes type of a kind Shoal loads.
func k8sObjectType(apiVersion, kind string) (k8sTypeID, bool) {
	for _, o := range k8sObjects {
		if o.apiVersion == apiVersion && o.kind == kind {
			return o.typ, true
		}
	}
	return 0, false
}

// apiGroup returns the group of an apiVersion: "" for v1, "apps" for apps/v1.
func apiGroup(apiVersion string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return group
}

// builtinGroup reports whether the API group of apiVersion is one Kubernetes builds in.
func builtinGroup(apiVersion string) bool {
	group := apiGroup(apiVersion)
	for _, k := range k8sKinds {
		if apiGroup(k.apiVersion) == group {
			return true
		}
	}
	return false
}

// servedKind reports whether Kubernetes serves kind in apiVersion.
func servedKind(apiVersion, kind string) bool {
	for _, k := range k8sKinds {
		if k.apiVersion == apiVersion && k.kind == kind {
			return !k.removed
		}
	}
	return false
}

// servedVersions returns the apiVersions that serve kind, in table order, leaving out
// alpha versions when there are others.
func servedVersions(kind string) []string {
	var stable, alpha []string
	for _, k := range k8sKinds {
		switch {
		case k.kind != kind || k.removed:
		case strings.Contains(k.apiVersion, "alpha"):
			alpha = append(alpha, k.apiVersion)
		default:
			stable = append(stable, k.apiVersion)
		}
	}
	// Alpha versions are off unless a cluster turns them on: name them only when the
	// kind has nothing else.
	if len(stable) > 0 {
		return stable
	}
	return alpha
}

// suggest returns the candidate closest to word that could be a misspelling of
// it — equal but for case, or within an edit distance of about a third of its
// length — or "" when none is.
func suggest(word string, candidates func(yield func(string) bool)) string {
	if len(word) > maxSuggestLen {
		return "" // no Kubernetes name is this long, and comparing would cost its square
	}
	best, bestDist := "", len(word)/3+1
	for c := range candidates {
		if strings.EqualFold(c, word) {
			return c
		}
		if d := editDistance(strings.ToLower(word), strings.ToLower(c), bestDist); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// maxSuggestLen is the longest word suggest compares; Kubernetes' longest field
// name, requiredDuringSchedulingIgnoredDuringExecution, has 47 letters.
const maxSuggestLen = 64

// editDistance is the Levenshtein distance of a and b, or limit when it is limit or more.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
