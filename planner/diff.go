package planner

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalhq/shoal/spec"
)

// Action is what a change does to an object.
type Action string

// Actions of a Change.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Change is one object that differs between two revisions.
type Change struct {
	Action Action
	Key    spec.Key
	// Fields lists what an update changes, in field order; empty for create and delete,
	// and for a Deployment that changes only through the ConfigMaps and Secrets in Config.
	Fields []FieldChange
	// Instances is, for a Deployment update whose instances are replaced (its instance
	// hash changes: template or referenced config), how many instances of the new
	// revision replace them: its new replicas. 0 otherwise.
	Instances int
	// Config lists, for a Deployment update whose instances are replaced, the changed
	// (created, updated or deleted) ConfigMaps and Secrets its pod template uses.
	Config []spec.Key
	// Replaces lists, for a ConfigMap or Secret, the Deployments of the new revision that
	// use it and whose instances are replaced: by its change alone, or by it among others.
	Replaces []Replacement
}

// Replacement is a Deployment whose instances a ConfigMap or Secret change replaces.
type Replacement struct {
	Deployment spec.Key
	// Instances is how many instances replace the running ones: the new replicas.
	Instances int
}

// FieldChange is one leaf (or whole added or removed subtree) that differs.
type FieldChange struct {
	// Path names the field: spec.template.spec.containers[web].image. List elements that all
	// carry distinct names are named, others numbered; keys that are not plain words are quoted.
	Path string
	// Old and New are compact JSON, "" when the field is absent. Values of a Secret's data
	// and stringData, and of its annotations and labels, are never shown: they read
	// "(secret, N bytes)".
	Old, New string
}

// Diff compares two sets object by object and field by field, in Key order. Either may be
// nil. It also says which Deployments' instances are replaced because a ConfigMap or Secret
// they use changed (see Change.Config and Change.Replaces): such a Deployment is an update
// even when its own manifest is the same.
func Diff(old, new *spec.Set) []Change {
	return configImpact(old, new, diffObjects(old, new))
}

// diffObjects compares two sets object by object and field by field, in Key order.
func diffObjects(old, new *spec.Set) []Change {
	a, b := objectsOf(old), objectsOf(new)
	var changes []Change
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && keyLess(a[0].Key(), b[0].Key()):
			changes = append(changes, Change{Action: ActionDelete, Key: a[0].Key()})
			a = a[1:]
		case len(a) == 0 || keyLess(b[0].Key(), a[0].Key()):
			changes = append(changes, Change{Action: ActionCreate, Key: b[0].Key()})
			b = b[1:]
		default:
			if fields := diffObject(a[0], b[0]); len(fields) > 0 {
				changes = append(changes, Change{Action: ActionUpdate, Key: a[0].Key(), Fields: fields})
			}
			a, b = a[1:], b[1:]
		}
	}
	return changes
}

// configImpact adds to changes what the changed ConfigMaps and Secrets do to the
// Deployments that use them: a Deployment of both revisions whose instance hash differs
// is replaced, and the changed config it references (spec.ConfigReferences, the objects
// its hash covers) is the reason, besides any change of its own template.
func configImpact(old, new *spec.Set, changes []Change) []Change {
	if old == nil || new == nil {
		return changes
	}
	at := make(map[spec.Key]int, len(changes))
	for i, c := range changes {
		at[c.Key] = i
	}
	isConfig := func(k spec.Key) bool {
		_, changed := at[k]
		return changed && (k.Kind == spec.KindConfigMap || k.Kind == spec.KindSecret)
	}
	added := false
	for _, d := range new.Deployments {
		before := old.Deployment(d.Metadata.Namespace, d.Metadata.Name)
		if before == nil || spec.InstanceHash(old, before) == spec.InstanceHash(new, d) {
			continue
		}
		instances := 1
		if d.Spec.Replicas != nil {
			instances = int(*d.Spec.Replicas)
		}
		var config []spec.Key
		for _, k := range spec.ConfigReferences(d) {
			if isConfig(k) {
				config = append(config, k)
				c := &changes[at[k]]
				c.Replaces = append(c.Replaces, Replacement{Deployment: d.Key(), Instances: instances})
			}
		}
		i, ok := at[d.Key()]
		if !ok {
			if len(config) == 0 {
				continue // cannot happen: the hash covers only the template and config
			}
			changes = append(changes, Change{Action: ActionUpdate, Key: d.Key()})
			i, added = len(changes)-1, true
		}
		changes[i].Instances, changes[i].Config = instances, config
	}
	if added {
		slices.SortStableFunc(changes, func(a, b Change) int {
			switch {
			case keyLess(a.Key, b.Key):
				return -1
			case keyLess(b.Key, a.Key):
				return 1
			}
			return 0
		})
	}
	return changes
}

func objectsOf(s *spec.Set) []spec.Object {
	if s == nil {
		return nil
	}
	return s.Objects()
}

func keyLess(a, b spec.Key) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// absent stands for a field one side does not have, unlike an explicit null.
type absent struct{}

// secrecy says whether a value is secret and how to count its bytes.
type secrecy uint8

const (
	public     secrecy = iota
	secretB64          // Secret.data: base64 of the bytes
	secretText         // Secret.stringData, annotations and labels: the bytes themselves
)

// secretMap marks the maps of a Secret whose keys decide which values are secret.
type secretMap uint8

const (
	notSecret      secretMap = iota
	secretRoot               // the Secret object itself
	secretMetadata           // its metadata
)

func diffObject(a, b spec.Object) []FieldChange {
	va, errA := genericJSON(a)
	vb, errB := genericJSON(b)
	if err := errors.Join(errA, errB); err != nil {
		return []FieldChange{{Path: "(object)", Old: "", New: "(cannot compare: " + err.Error() + ")"}}
	}
	var d differ
	at := notSecret
	if a.Key().Kind == spec.KindSecret {
		at = secretRoot
	}
	d.walk("", va, vb, public, at)
	return d.fields
}

// genericJSON turns an object into maps, lists and json.Numbers.
func genericJSON(o spec.Object) (any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", o.Key(), err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", o.Key(), err)
	}
	return v, nil
}

type differ struct {
	fields []FieldChange
}

// walk records the differences between a and b under path, redacted as sec says. at marks
// the maps of a Secret whose keys decide what is redacted below them (see secretField).
func (d *differ) walk(path string, a, b any, sec secrecy, at secretMap) {
	if reflect.DeepEqual(a, b) {
		return
	}
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		for _, k := range slices.Sorted(maps.Keys(merge(am, bm))) {
			child, childAt := sec, notSecret
			if at != notSecret {
				child, childAt = secretField(at, k)
			}
			d.walk(path+fieldKey(path, k), valueAt(am, k), valueAt(bm, k), child, childAt)
		}
		return
	}
	al, aIsList := a.([]any)
	bl, bIsList := b.([]any)
	if aIsList && bIsList {
		d.walkList(path, al, bl, sec)
		return
	}
	old, new := render(a, sec), render(b, sec)
	if old == new {
		// Redaction hid the difference; say there is one without saying what.
		new = strings.TrimSuffix(new, ")") + ", changed)"
	}
	d.fields = append(d.fields, FieldChange{Path: path, Old: old, New: new})
}

// walkList pairs list elements by name when every element of both lists has a distinct
// one (containers, env, volumes), else by index.
func (d *differ) walkList(path string, a, b []any, sec secrecy) {
	an, aNamed := names(a)
	bn, bNamed := names(b)
	if !aNamed || !bNamed {
		for i := range max(len(a), len(b)) {
			d.walk(path+"["+strconv.Itoa(i)+"]", elementAt(a, i), elementAt(b, i), sec, notSecret)
		}
		return
	}
	for i, name := range bn {
		var old any = absent{}
		if j := slices.Index(an, name); j >= 0 {
			old = a[j]
		}
		d.walk(path+"["+name+"]", old, b[i], sec, notSecret)
	}
	for j, name := range an {
		if !slices.Contains(bn, name) {
			d.walk(path+"["+name+"]", a[j], absent{}, sec, notSecret)
		}
	}
}

// names returns the "name" of each element, and whether all have a distinct non-empty one.
func names(list []any) ([]string, bool) {
	out := make([]string, len(list))
	for i, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if name == "" || slices.Contains(out[:i], name) {
			return nil, false
		}
		out[i] = name
	}
	return out, true
}

// secretField says whether field k of a Secret's map at holds secret values, and whether
// it is itself a map whose keys decide that. Besides data and stringData, a Secret's
// annotations and labels are secret: kubectl apply copies the whole object, data included,
// into the kubectl.kubernetes.io/last-applied-configuration annotation, and any other tool
// may put anything there. Only the name, namespace and type are shown.
func secretField(at secretMap, k string) (secrecy, secretMap) {
	switch {
	case at == secretRoot && k == "data":
		return secretB64, notSecret
	case at == secretRoot && k == "stringData":
		return secretText, notSecret
	case at == secretRoot && k == "metadata":
		return public, secretMetadata
	case at == secretMetadata && (k == "annotations" || k == "labels"):
		return secretText, notSecret
	}
	return public, notSecret
}

func merge(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func valueAt(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return absent{}
}

func elementAt(l []any, i int) any {
	if i < len(l) {
		return l[i]
	}
	return absent{}
}

// fieldKey renders one step of a path: .name for plain words, ["app.kubernetes.io/name"] otherwise.
func fieldKey(path, k string) string {
	plain := k != ""
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			plain = false
		}
	}
	switch {
	case !plain:
		return "[" + strconv.Quote(k) + "]"
	case path == "":
		return k
	}
	return "." + k
}

// render writes a value as compact JSON, redacting secrets.
func render(v any, sec secrecy) string {
	if _, ok := v.(absent); ok {
		return ""
	}
	if sec != public {
		if s, ok := v.(string); ok {
			return redact(s, sec)
		}
		if m, ok := v.(map[string]any); ok {
			redacted := map[string]any{}
			for k, e := range m {
				redacted[k] = render(e, sec)
			}
			v = redacted
		} else {
			return "(secret)"
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "(unprintable: " + err.Error() + ")"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// redact says how long a secret value is and nothing else: even a short hash of a
// low-entropy password would let anyone holding the output guess it offline.
func redact(s string, sec secrecy) string {
	n := len(s)
	if sec == secretB64 {
		if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
			n = len(raw)
		}
	}
	return "(secret, " + strconv.Itoa(n) + " bytes)"
}

// FormatDiff writes changes for people, like `flux diff`: one line per object marked
// + (create), ~ (update) or - (delete), the changed fields of updates indented below,
// then a count. Secret values never appear.
func FormatDiff(w io.Writer, changes []Change) error {
	var b strings.Builder
	if len(changes) == 0 {
		b.WriteString("No changes.\n")
	}
	counts := map[Action]int{}
	mark := map[Action]string{ActionCreate: "+", ActionUpdate: "~", ActionDelete: "-"}
	for _, c := range changes {
		counts[c.Action]++
		b.WriteString(mark[c.Action] + " " + c.Key.String())
		if len(c.Config) > 0 {
			names := make([]string, len(c.Config))
			for i, k := range c.Config {
				names[i] = k.Kind + "/" + k.Name // the Deployment's own namespace
			}
			b.WriteString(" (config: " + strings.Join(names, ", ") + ")")
		}
		b.WriteString("\n")
		for _, f := range c.Fields {
			b.WriteString("    " + f.Path + ": " + orNone(f.Old) + " -> " + orNone(f.New) + "\n")
		}
		if len(c.Replaces) > 0 {
			deps := make([]string, len(c.Replaces))
			for i, r := range c.Replaces {
				deps[i] = fmt.Sprintf("%s (%s)", r.Deployment, instances(r.Instances))
			}
			b.WriteString("    → replaces " + strings.Join(deps, ", ") + "\n")
		}
	}
	if len(changes) > 0 {
		fmt.Fprintf(&b, "\n%d to create, %d to update, %d to delete.\n",
			counts[ActionCreate], counts[ActionUpdate], counts[ActionDelete])
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("planner: write diff: %w", err)
	}
	return nil
}

func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
