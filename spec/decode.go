package spec

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// The decoder maps yaml.Node trees straight onto the typed structs of types.go,
// following their json tags the way Kubernetes decodes JSON (field names are
// case-sensitive, null leaves a field unset, a string is never silently read as
// a number or the reverse). Going straight from nodes keeps the line of every
// field and avoids a second pass through encoding/json. Beside each struct the
// decoder walks the Kubernetes type it stands for (k8s_gen.go): that is what
// tells a typo (an error) from a real field Shoal does not honour (a warning).
// Scalars are read as kubectl reads them, through YAML 1.1 (scalarFits).

// YAML tags as yaml.Node.ShortTag reports them.
const (
	tagNull      = "!!null"
	tagBool      = "!!bool"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagStr       = "!!str"
	tagTimestamp = "!!timestamp"
	tagBinary    = "!!binary"
	tagMerge     = "!!merge"
)

var (
	envVarType      = reflect.TypeFor[EnvVar]()
	quantityType    = reflect.TypeFor[Quantity]()
	intOrStringType = reflect.TypeFor[IntOrString]()
	bytesType       = reflect.TypeFor[[]byte]()
)

// structInfo maps the json names of a struct's fields (embedded structs
// flattened) to their reflect indexes.
type structInfo struct {
	byName map[string]int
	fields []structField
}

type structField struct {
	index []int
}

// structInfos describes every struct reachable from the kinds Shoal honours;
// it is built once at start-up and never written again.
var structInfos = buildStructInfos(
	reflect.TypeFor[Namespace](), reflect.TypeFor[Deployment](), reflect.TypeFor[Service](),
	reflect.TypeFor[ConfigMap](), reflect.TypeFor[Secret](),
)

func buildStructInfos(roots ...reflect.Type) map[reflect.Type]*structInfo {
	infos := map[reflect.Type]*structInfo{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			visit(t.Elem())
			return
		case reflect.Struct:
		default:
			return
		}
		if _, done := infos[t]; done || t == quantityType || t == intOrStringType {
			return
		}
		info := &structInfo{byName: map[string]int{}}
		infos[t] = info
		addStructFields(info, t, nil, visit)
	}
	for _, t := range roots {
		visit(t)
	}
	return infos
}

// addStructFields records t's json fields under the index prefix, flattening
// embedded and ",inline" structs as encoding/json does.
func addStructFields(info *structInfo, t reflect.Type, prefix []int, visit func(reflect.Type)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		index := append(append([]int(nil), prefix...), i)
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) && f.Type.Kind() == reflect.Struct {
			addStructFields(info, f.Type, index, visit)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if len(info.fields) == 64 {
			panic("spec: " + t.String() + " has more fields than structValue's bitmask holds")
		}
		info.byName[name] = len(info.fields)
		info.fields = append(info.fields, structField{index: index})
		visit(f.Type)
	}
}

// decoder decodes the documents of one file, collecting diagnostics.
type decoder struct {
	file  string
	diags Diagnostics
	// path is the field being decoded, kept as a stack rather than built per
	// field, since it is rendered only for a diagnostic.
	path []segment
	// secret is set while decoding what may hold a secret — all of a Secret, an
	// env var's value — so that no diagnostic quotes it: diagnostics reach
	// status, logs, validate and plan, which anyone watching the cluster reads.
	secret bool
	// hints counts the "did you mean" searches of this file, which stop at maxHints
	// so that a file of misspelt names costs no more than one of right ones.
	hints int
}

// maxHints bounds the hint searches of one file (see decoder.hints).
const maxHints = 64

func (d *decoder) push(s segment) { d.path = append(d.path, s) }
func (d *decoder) pop()           { d.path = d.path[:len(d.path)-1] }

// add reports a finding at n's line and the current path.
func (d *decoder) add(sev Severity, n *yaml.Node, msg string) {
	d.diags = append(d.diags, Diagnostic{Severity: sev, File: d.file, Line: n.Line, Path: renderPath(d.path), Message: msg})
}

// warn reports a warning about feature at n's line and the current path.
func (d *decoder) warn(n *yaml.Node, feature, msg string) {
	d.add(SeverityWarning, n, msg)
	d.diags[len(d.diags)-1].Feature = feature
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.add(SeverityError, n, fmt.Sprintf(format, args...))
}

// value decodes n into v, which must be settable, and whose Kubernetes type is kt.
func (d *decoder) value(n *yaml.Node, v reflect.Value, kt k8sTypeID) {
	n = resolveAlias(n)
	if isNull(n) {
		return // as in encoding/json, null leaves the field unset
	}
	switch v.Type() {
	case quantityType:
		if !d.scalarFits(n, k8sQuantity) {
			return
		}
		// A malformed quantity is kept and reported by validation with the other rules.
		q, _ := ParseQuantity(n.Value)
		v.Set(reflect.ValueOf(q))
		return
	case intOrStringType:
		d.intOrString(n, v)
		return
	case bytesType:
		if !d.scalarFits(n, k8sBytes) {
			return
		}
		b, err := base64.StdEncoding.DecodeString(n.Value)
		if err != nil {
			d.errorf(n, "invalid base64 data: %v", err)
			return
		}
		v.SetBytes(b)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, elem.Elem(), kt)
		v.Set(elem)
	case reflect.Struct:
		d.structValue(n, v, kt)
	case reflect.Map:
		d.mapValue(n, v, kt.get().elem)
	case reflect.Slice:
		d.sliceValue(n, v, kt.get().elem)
	case reflect.String:
		if d.scalarFits(n, k8sString) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if d.scalarFits(n, k8sBool) {
			v.SetBool(yaml11True[n.Value])
		}
	case reflect.Int32, reflect.Int64:
		if !d.scalarFits(n, k8sInt) {
			return
		}
		i, err := parseInt(n.Value, v.Type().Bits())
		if n.ShortTag() == tagFloat {
			// kubectl turns YAML into JSON, where 3.0 is 3: a whole number fits.
			f, _ := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if f != math.Trunc(f) {
				d.mismatch(n, "an integer")
				return
			}
			i, err = int64(f), nil
			if math.Abs(f) >= math.Ldexp(1, v.Type().Bits()-1) {
				err = strconv.ErrRange
			}
		}
		if err != nil {
			d.errorf(n, "integer%s out of range for %d bits", d.shown(n, false), v.Type().Bits())
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, "internal error: cannot decode into %s", v.Type())
	}
}

// parseInt parses a YAML integer: decimal, 0x, 0o, 0b or leading-zero octal, with _ separators.
// YAML 1.1, which kubectl reads, agrees: defaultMode: 0644 is 420.
func parseInt(s string, bits int) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, bits)
}

// YAML 1.1 booleans, which kubectl reads YAML as (sigs.k8s.io/yaml's go-yaml v2
// resolves them before the JSON decoder sees them): the value each word stands for.
var yaml11True = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"on": true, "On": true, "ON": true, "true": true, "True": true, "TRUE": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false,
	"off": false, "Off": false, "OFF": false, "false": false, "False": false, "FALSE": false,
}

// isYAML11Bool reports whether n is a plain (unquoted, untagged) word that YAML 1.1
// reads as a boolean, although YAML 1.2 reads y, yes, on, n, no and off as strings.
func isYAML11Bool(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode || n.Style != 0 {
		return false
	}
	_, ok := yaml11True[n.Value]
	return ok
}

// scalarText is a scalar as kubectl reads it: a YAML 1.1 boolean word is "true" or
// "false".
func scalarText(n *yaml.Node) string {
	if isYAML11Bool(n) {
		return strconv.FormatBool(yaml11True[n.Value])
	}
	return n.Value
}

// classWants names what a value of each scalar class must be, for messages.
var classWants = [...]string{
	k8sStruct: "a mapping", k8sList: "a list", k8sMap: "a mapping",
	k8sString: "a string", k8sBool: "a boolean", k8sInt: "an integer", k8sFloat: "a number",
	k8sBytes: "a base64 string", k8sQuantity: "a quantity", k8sIntOrString: "an integer or a string",
	k8sTime: "a timestamp string", k8sAny: "a value",
}

// scalarFits reports whether n may be decoded as a value of the scalar class, and
// reports why not otherwise. It reads YAML as kubectl does: a string field refuses
// 8080, true and (YAML 1.1) yes; an integer field takes 3.0 but not 3.5 (that is
// checked when parsing); a boolean field takes yes and on.
func (d *decoder) scalarFits(n *yaml.Node, class k8sClass) bool {
	if class == k8sAny {
		return true
	}
	tag := ""
	if n.Kind == yaml.ScalarNode {
		tag = n.ShortTag()
	}
	var ok bool
	switch class {
	case k8sString, k8sTime, k8sIntOrString:
		if tag == tagStr && isYAML11Bool(n) {
			d.errorf(n, "expected %s, got%s, which kubectl reads as a boolean (YAML 1.1 makes unquoted y, yes, on, n, no and off booleans): quote it", classWants[class], d.shown(n, true))
			return false
		}
		ok = oneOf(tag, tagStr, tagTimestamp) || class == k8sIntOrString && tag == tagInt
	case k8sBool:
		ok = tag == tagBool || tag == tagStr && isYAML11Bool(n)
	case k8sInt:
		ok = tag == tagInt || tag == tagFloat
	case k8sFloat:
		ok = oneOf(tag, tagInt, tagFloat)
	case k8sBytes:
		ok = oneOf(tag, tagStr, tagBinary)
	case k8sQuantity:
		ok = oneOf(tag, tagStr, tagInt, tagFloat)
	}
	if !ok {
		d.mismatch(n, classWants[class])
	}
	return ok
}

func (d *decoder) intOrString(n *yaml.Node, v reflect.Value) {
	if !d.scalarFits(n, k8sIntOrString) {
		return
	}
	if n.ShortTag() == tagInt {
		i, err := parseInt(n.Value, 32)
		if err != nil {
			d.errorf(n, "integer%s out of range for 32 bits", d.shown(n, false))
			return
		}
		v.Set(reflect.ValueOf(FromInt(int32(i))))
		return
	}
	v.Set(reflect.ValueOf(FromString(n.Value)))
}

// structValue decodes mapping n into the struct v, walking kt, the Kubernetes
// type v stands for, beside it: a key kt lacks is an error, a key kt has and v
// lacks is a field Shoal does not honour.
func (d *decoder) structValue(n *yaml.Node, v reflect.Value, kt k8sTypeID) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, "a mapping")
		return
	}
	info := structInfos[v.Type()]
	if info == nil {
		d.errorf(n, "internal error: no field table for %s", v.Type())
		return
	}
	var seen uint64 // fields set so far, by index; every struct here has fewer than 64
	d.eachPair(n, func(key, val *yaml.Node, merged bool) {
		d.push(segment{name: key.Value, kind: segmentField})
		defer d.pop()
		ft, known := d.k8sField(key, kt)
		if !known {
			return
		}
		i, honoured := info.byName[key.Value]
		switch {
		case !honoured:
			d.unhonoured(key, val, kt, ft)
		case seen&(1<<i) != 0 && !merged:
			d.errorf(key, "duplicate field %q", key.Value)
		case seen&(1<<i) == 0:
			seen |= 1 << i
			secret := d.secret
			// An env var's value is where a password goes when it is not in a Secret.
			d.secret = secret || v.Type() == envVarType && key.Value == "value"
			d.value(val, v.FieldByIndex(info.fields[i].index), ft)
			d.secret = secret
		}
	})
}

// k8sField returns the type of the field key names in the Kubernetes struct kt,
// or reports that Kubernetes has no such field, as kubectl's strict field
// validation does, with the field it likely meant.
func (d *decoder) k8sField(key *yaml.Node, kt k8sTypeID) (k8sTypeID, bool) {
	if ft, ok := kt.field(key.Value); ok {
		return ft, true
	}
	hint := d.suggest(key.Value, func(yield func(string) bool) {
		for _, f := range kt.get().fields {
			if !yield(f.name) {
				return
			}
		}
	})
	if hint != "" {
		d.errorf(key, "unknown field %q: did you mean %q?", key.Value, hint)
	} else {
		d.errorf(key, "unknown field %q", key.Value)
	}
	return 0, false
}

// suggest is suggest within the file's budget of hint searches.
func (d *decoder) suggest(word string, candidates func(yield func(string) bool)) string {
	if d.hints++; d.hints > maxHints {
		return ""
	}
	return suggest(word, candidates)
}

// unhonoured reports a field of the Kubernetes struct parent that Shoal's types
// lack, as fieldPolicies says, and checks its value against Kubernetes' type ft so
// that a typo inside is still an error. The field warns once, not once per part.
func (d *decoder) unhonoured(key, val *yaml.Node, parent, ft k8sTypeID) {
	policy := policyFor(parent.get().name, key.Value)
	// An empty value (status: {}, creationTimestamp: null) asks for nothing, so
	// there is nothing to refuse or to warn about not honouring.
	switch v := resolveAlias(val); {
	case isEmpty(v) || policy.serverSet:
	case policy.refused != "":
		d.errorf(key, "field not supported: %s, and running without it would fail open", policy.refused)
	case policy.unsupported != "":
		d.errorf(key, policy.unsupported, key.Value)
	case policy.shoalDoes != "" && v.Kind == yaml.ScalarNode && scalarText(v) == policy.shoalDoes:
	case policy.shoalDoes != "":
		d.warn(key, genericPath(d.path), fmt.Sprintf("not honoured by Shoal: Shoal does %q", policy.shoalDoes))
	case policy.feature != "":
		d.warn(key, policy.feature, "not honoured by Shoal: "+policy.why)
	default:
		d.warn(key, genericPath(d.path), "not honoured by Shoal")
	}
	d.conforms(val, ft)
}

// conforms checks n against the Kubernetes type kt alone, for what Shoal does not
// decode: unknown fields and values of the wrong type are errors, as in kubectl.
func (d *decoder) conforms(n *yaml.Node, kt k8sTypeID) {
	n = resolveAlias(n)
	t := kt.get()
	if isNull(n) || t.class == k8sAny {
		return
	}
	switch t.class {
	case k8sStruct:
		if n.Kind != yaml.MappingNode {
			d.mismatch(n, "a mapping")
			return
		}
		d.eachPair(n, func(key, val *yaml.Node, _ bool) {
			d.push(segment{name: key.Value, kind: segmentField})
			if ft, ok := d.k8sField(key, kt); ok {
				d.conforms(val, ft)
			}
			d.pop()
		})
	case k8sMap:
		if n.Kind != yaml.MappingNode {
			d.mismatch(n, "a mapping")
			return
		}
		d.eachPair(n, func(key, val *yaml.Node, _ bool) {
			d.push(segment{name: key.Value, kind: segmentKey})
			d.conforms(val, t.elem)
			d.pop()
		})
	case k8sList:
		if n.Kind != yaml.SequenceNode {
			d.mismatch(n, "a list")
			return
		}
		for i, item := range n.Content {
			d.push(segment{index: i, kind: segmentIndex})
			d.conforms(item, t.elem)
			d.pop()
		}
	default:
		d.scalarFits(n, t.class)
	}
}

// genericPath renders path without its list indexes and map keys, naming a field
// of every object alike: spec.template.spec.containers[].stdin.
func genericPath(path []segment) string {
	var b strings.Builder
	for _, s := range path {
		switch s.kind {
		case segmentIndex:
			b.WriteString("[]")
		case segmentKey:
			b.WriteString("[*]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.name)
		}
	}
	return b.String()
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, elemKT k8sTypeID) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, "a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	elemType := v.Type().Elem()
	d.eachPair(n, func(key, val *yaml.Node, merged bool) {
		k := reflect.ValueOf(key.Value)
		d.push(segment{name: key.Value, kind: segmentKey})
		defer d.pop()
		if v.MapIndex(k).IsValid() {
			if !merged {
				d.errorf(key, "duplicate key %q", key.Value)
			}
			return
		}
		elem := reflect.New(elemType).Elem()
		d.value(val, elem, elemKT)
		v.SetMapIndex(k, elem)
	})
}

func (d *decoder) sliceValue(n *yaml.Node, v reflect.Value, elemKT k8sTypeID) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.push(segment{index: i, kind: segmentIndex})
		d.value(item, s.Index(i), elemKT)
		d.pop()
	}
	v.Set(s)
}

// eachPair calls fn for every key of mapping n: first its own keys in order, then
// those of the mappings it merges with "<<" (merged set), which fn skips when an
// own key already set them, so explicit keys win as YAML merge keys specify.
func (d *decoder) eachPair(n *yaml.Node, fn func(key, val *yaml.Node, merged bool)) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if isMergeKey(key) {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.errorf(key, "mapping keys must be strings, got %s", d.describe(key))
			continue
		}
		fn(key, n.Content[i+1], false)
	}
	for _, src := range merges {
		sources := mergeSources(src)
		if sources == nil {
			d.errorf(src, "a merge key (<<) must name a mapping or a list of mappings")
		}
		for _, m := range sources {
			d.eachPair(m, func(key, val *yaml.Node, _ bool) { fn(key, val, true) })
		}
	}
}

// mergeSources returns the mappings that a "<<" value merges, or nil when it is not
// a mapping or a list of mappings.
func mergeSources(n *yaml.Node) []*yaml.Node {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		out := make([]*yaml.Node, 0, len(n.Content))
		for _, item := range n.Content {
			if item = resolveAlias(item); item.Kind != yaml.MappingNode {
				return nil
			}
			out = append(out, item)
		}
		return out
	}
	return nil
}

func (d *decoder) mismatch(n *yaml.Node, want string) {
	d.errorf(n, "expected %s, got %s", want, d.describe(n))
}

var tagNames = map[string]string{
	tagInt: "integer", tagFloat: "number", tagBool: "boolean", tagStr: "string",
	tagTimestamp: "timestamp", tagBinary: "binary", tagNull: "null",
}

// describe names what a node holds for a type-mismatch message: its type, and its
// value unless it may be secret.
func (d *decoder) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	what := tagNames[n.ShortTag()]
	if what == "" {
		what = "value tagged " + n.Tag
	}
	return what + d.shown(n, true)
}

// shown is scalar n's value for a diagnostic, after a space: quoted and cut to 40
// bytes, or left out while decoding what may be secret. Kubernetes, too, quotes no
// value in its decoding errors.
func (d *decoder) shown(n *yaml.Node, quote bool) string {
	if d.secret {
		return " (value not shown: it may be secret)"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	if quote {
		v = strconv.Quote(v)
	}
	return " " + v
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	// checkShape has already refused alias cycles, as nesting too deep.
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagMerge
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// isEmpty reports whether n is null, {} or [].
func isEmpty(n *yaml.Node) bool {
	n = resolveAlias(n)
	return isNull(n) || (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
