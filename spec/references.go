package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Checks across the objects of one revision: duplicates, and every reference
// from a Deployment to a ConfigMap or Secret and from an object to its Namespace.

// reference is one use of another object of the revision, and where it is made.
type reference struct {
	target Key
	// key is the ConfigMap or Secret key the use needs; "" when it needs the whole object.
	key      string
	optional bool
	// at locates the name of the target; keyAt the key, when there is one.
	at, keyAt position
}

// position is where a diagnostic about an object's field goes.
type position struct {
	file string
	line int
	path string
}

func (r *report) position(p *fieldPath) position {
	line, _ := r.loc.line(p)
	return position{file: r.file, line: line, path: p.String()}
}

// builtinNamespaces exist in every Kubernetes cluster without a Namespace object, so
// manifests written for one (an add-on in kube-system, say) name them undeclared.
var builtinNamespaces = map[string]bool{
	DefaultNamespace: true, "kube-system": true, "kube-public": true, "kube-node-lease": true,
}

// objectReferences lists what o refers to, located through r. Names that are
// invalid are left out: validation reported them, and "not found" would repeat it.
func objectReferences(r *report, o Object) []reference {
	var refs []reference
	ns := o.Meta().Namespace
	if _, isNamespace := o.(*Namespace); !isNamespace && !builtinNamespaces[ns] && dns1123Label(ns) == "" {
		refs = append(refs, reference{target: Key{Kind: KindNamespace, Name: ns}, at: r.position(metadataNamespacePath)})
	}
	if d, ok := o.(*Deployment); ok {
		podSpec := root.child("spec").child("template").child("spec")
		eachPodReference(podSpec, &d.Spec.Template.Spec, ns, func(u podReference) {
			if dns1123Subdomain(u.target.Name) != "" {
				return
			}
			ref := reference{target: u.target, key: u.key, optional: u.optional != nil && *u.optional, at: r.position(u.at)}
			if u.keyAt != nil {
				ref.keyAt = r.position(u.keyAt)
			}
			refs = append(refs, ref)
		})
	}
	return refs
}

// podReference is a use of a ConfigMap or Secret by a pod spec, as eachPodReference finds it.
type podReference struct {
	target    Key
	key       string
	optional  *bool
	at, keyAt *fieldPath
}

// eachPodReference calls fn for every ConfigMap and Secret a pod spec (at p) uses:
// env valueFrom and envFrom of init and app containers, volumes and projected volumes'
// sources. It serves both validation and ConfigReferences (InstanceHash, and what
// `shoal plan` says a config change replaces),
// so that what is checked to exist is exactly what changes the hash.
func eachPodReference(p *fieldPath, ps *PodSpec, namespace string, fn func(podReference)) {
	configMap := func(name string) Key { return Key{Kind: KindConfigMap, Namespace: namespace, Name: name} }
	secret := func(name string) Key { return Key{Kind: KindSecret, Namespace: namespace, Name: name} }
	keyRef := func(p *fieldPath, target Key, ks *KeySelector) {
		fn(podReference{target: target, key: ks.Key, optional: ks.Optional, at: p.child("name"), keyAt: p.child("key")})
	}
	for i, c := range ps.AllContainers() {
		cp := p.child("initContainers").at(i)
		if i >= len(ps.InitContainers) {
			cp = p.child("containers").at(i - len(ps.InitContainers))
		}
		for j, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			vp := cp.child("env").at(j).child("valueFrom")
			if ks := e.ValueFrom.ConfigMapKeyRef; ks != nil {
				keyRef(vp.child("configMapKeyRef"), configMap(ks.Name), ks)
			}
			if ks := e.ValueFrom.SecretKeyRef; ks != nil {
				keyRef(vp.child("secretKeyRef"), secret(ks.Name), ks)
			}
		}
		for j, ef := range c.EnvFrom {
			ep := cp.child("envFrom").at(j)
			if ref := ef.ConfigMapRef; ref != nil {
				fn(podReference{target: configMap(ref.Name), optional: ref.Optional, at: ep.child("configMapRef").child("name")})
			}
			if ref := ef.SecretRef; ref != nil {
				fn(podReference{target: secret(ref.Name), optional: ref.Optional, at: ep.child("secretRef").child("name")})
			}
		}
	}
	volume := func(vp *fieldPath, target Key, nameField string, items []KeyToPath, optional *bool) {
		fn(podReference{target: target, optional: optional, at: vp.child(nameField)})
		for k, item := range items {
			fn(podReference{target: target, key: item.Key, optional: optional, at: vp.child(nameField), keyAt: vp.child("items").at(k).child("key")})
		}
	}
	for i, v := range ps.Volumes {
		vp := p.child("volumes").at(i)
		if cm := v.ConfigMap; cm != nil {
			volume(vp.child("configMap"), configMap(cm.Name), "name", cm.Items, cm.Optional)
		}
		if s := v.Secret; s != nil {
			volume(vp.child("secret"), secret(s.SecretName), "secretName", s.Items, s.Optional)
		}
		if pr := v.Projected; pr != nil {
			for j, src := range pr.Sources {
				sp := vp.child("projected").child("sources").at(j)
				if cm := src.ConfigMap; cm != nil {
					volume(sp.child("configMap"), configMap(cm.Name), "name", cm.Items, cm.Optional)
				}
				if s := src.Secret; s != nil {
					volume(sp.child("secret"), secret(s.Name), "name", s.Items, s.Optional)
				}
			}
		}
	}
}

// Validate checks a Set built in code the way Load checks manifests: every object
// on its own, then duplicates and references between them and, when all that holds,
// what each Service selects. Objects should have
// had SetDefaults applied. Diagnostics are located at each object's Source line.
func Validate(set *Set) Diagnostics {
	var diags Diagnostics
	var refs []reference
	var sels []selection
	set.eachObject(func(o Object) {
		r := &report{file: o.Origin().File, loc: objectLocator{line0: o.Origin().Line}}
		validateObject(r, o)
		diags = append(diags, r.diags...)
		refs = append(refs, objectReferences(r, o)...)
		if sel := objectSelection(r, o); sel != nil {
			sels = append(sels, *sel)
		}
	})
	diags = append(diags, checkSet(set, refs)...)
	if !diags.HasErrors() {
		diags = append(diags, checkSelections(set, sels)...)
	}
	sortDiagnostics(diags)
	return diags
}

// checkSet reports objects declared twice and references to what the set does not hold.
func checkSet(set *Set, refs []reference) Diagnostics {
	var diags Diagnostics
	errorAt := func(at position, format string, args ...any) {
		diags = append(diags, Diagnostic{Severity: SeverityError, File: at.file, Line: at.line, Path: at.path, Message: fmt.Sprintf(format, args...)})
	}
	index := map[Key]Object{}
	set.eachObject(func(o Object) {
		k := o.Key()
		if first, dup := index[k]; dup {
			errorAt(position{file: o.Origin().File, line: o.Origin().Line}, "%s is declared twice: at %s and at %s", k, first.Origin(), o.Origin())
			return
		}
		index[k] = o
	})
	missingReported := map[position]bool{}
	for _, ref := range refs {
		target, found := index[ref.target]
		switch {
		case ref.optional:
		case !found && ref.target.Kind == KindNamespace:
			errorAt(ref.at, "namespace %q is not declared: add a Namespace object for it or use %q", ref.target.Name, DefaultNamespace)
		case !found:
			if !missingReported[ref.at] {
				missingReported[ref.at] = true
				errorAt(ref.at, "%s", MissingReference(ref.target.Kind, ref.target.Name, ref.target.Namespace, ""))
			}
		case ref.key != "" && !hasKey(target, ref.key):
			errorAt(ref.keyAt, "%s", MissingReference(ref.target.Kind, ref.target.Name, ref.target.Namespace, ref.key))
		}
	}
	return diags
}

// MissingReference is the message for a ConfigMap or Secret (kind), or one key of it, that
// a workload needs and the commit does not hold, saying how to fix it: the commit is the
// only source of both, so the fix is in the repository or in the reference.
func MissingReference(kind, name, namespace, key string) string {
	what := fmt.Sprintf("%s %q", strings.ToLower(kind), name)
	fix := "add it to the repository"
	if kind == KindSecret {
		fix += " (encrypted secrets are a coming feature)"
	}
	if key != "" {
		what = fmt.Sprintf("key %q of %s", key, what)
		fix = "add the key to the " + kind
	}
	return fmt.Sprintf("%s not found in namespace %q of this commit: %s or mark the reference optional: true", what, namespace, fix)
}

func hasKey(o Object, key string) bool {
	switch o := o.(type) {
	case *ConfigMap:
		_, inData := o.Data[key]
		_, inBinary := o.BinaryData[key]
		return inData || inBinary
	case *Secret:
		_, inData := o.Data[key]
		_, inString := o.StringData[key]
		return inData || inString
	}
	return false
}

// sortDiagnostics orders diagnostics by file and line, keeping the order of findings on one line.
func sortDiagnostics(ds Diagnostics) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}
