package spec

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
)

// instanceHashLength is the number of hex digits of InstanceHash: 40 bits, so that
// two templates of one Deployment collide about once in a trillion changes.
const instanceHashLength = 10

// InstanceHash identifies what an instance of d runs: its pod template (as
// defaulted) and the contents of every ConfigMap and Secret the template uses
// through env, envFrom and volumes. An instance whose hash differs from the
// Deployment's is replaced, so changing a referenced ConfigMap rolls the
// Deployment as a template change does. Replicas, strategy and where the manifest
// lives do not enter the hash. A referenced object missing from set (an optional
// one) hashes as absent, so creating it later replaces the instances too.
func InstanceHash(set *Set, d *Deployment) string {
	if set != nil {
		if h, ok := set.hashes[d]; ok {
			return h
		}
	}
	return computeInstanceHash(set, d)
}

// hashAll computes every Deployment's InstanceHash once, when Load has finished the set:
// the daemons that take the revision read them instead of encoding the templates again.
func (s *Set) hashAll() {
	s.hashes = make(map[*Deployment]string, len(s.Deployments))
	for _, d := range s.Deployments {
		s.hashes[d] = computeInstanceHash(s, d)
	}
}

func computeInstanceHash(set *Set, d *Deployment) string {
	h := sha256.New()
	// encoding/json writes map keys sorted, which makes the text independent of
	// map iteration order; neither it nor the hash can fail on these types.
	enc := json.NewEncoder(h)
	_ = enc.Encode(d.Spec.Template)
	for _, k := range ConfigReferences(d) {
		_ = enc.Encode(k)
		_ = enc.Encode(referencedContent(set, k))
	}
	return hex.EncodeToString(h.Sum(nil))[:instanceHashLength]
}

// ConfigReferences lists the ConfigMaps and Secrets d's pod template uses (env valueFrom,
// envFrom, volumes), each once, ordered by kind and name: the objects whose content enters
// InstanceHash, so a change to any of them replaces d's instances. Optional references
// are listed whether or not the object exists.
func ConfigReferences(d *Deployment) []Key {
	var targets []Key
	eachPodReference(nil, &d.Spec.Template.Spec, d.Metadata.Namespace, func(u podReference) {
		targets = append(targets, u.target)
	})
	slices.SortFunc(targets, func(a, b Key) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return slices.Compact(targets)
}

// configContent is what a ConfigMap or Secret contributes to InstanceHash; empty
// and absent maps are omitted alike, as they mean the same.
type configContent struct {
	Type       string            `json:"type,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	Bytes      map[string][]byte `json:"bytes,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

// referencedContent returns the content of the ConfigMap or Secret k, or nil when set does not hold it.
func referencedContent(set *Set, k Key) *configContent {
	if set == nil {
		return nil
	}
	switch k.Kind {
	case KindConfigMap:
		if cm := set.ConfigMap(k.Namespace, k.Name); cm != nil {
			return &configContent{Data: cm.Data, Bytes: cm.BinaryData}
		}
	case KindSecret:
		if s := set.Secret(k.Namespace, k.Name); s != nil {
			return &configContent{Type: s.Type, Bytes: s.Data, StringData: s.StringData}
		}
	}
	return nil
}
