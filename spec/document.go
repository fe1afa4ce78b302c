package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// Decode decodes one manifest file: every YAML document in it is decoded,
// defaulted and validated on its own. References between objects (ConfigMaps,
// Secrets, Namespaces) and duplicates need the whole revision and are checked by
// Load. file names the file in diagnostics. Objects are nil when any diagnostic
// is an error.
func Decode(file string, data []byte, opts LoadOptions) ([]Object, Diagnostics) {
	if err := opts.Validate(); err != nil {
		return nil, Diagnostics{{Severity: SeverityError, File: file, Message: err.Error()}}
	}
	res := decodeFile(file, data, opts.withDefaults())
	sortDiagnostics(res.diags)
	if res.diags.HasErrors() {
		return nil, res.diags
	}
	return res.objects, res.diags
}

// fileResult is what one file yields: its objects, the references they make
// to other objects (with the place each is made), and diagnostics.
type fileResult struct {
	objects    []Object
	refs       []reference
	uses       []usage
	selections []selection
	diags      Diagnostics
}

func decodeFile(file string, data []byte, opts LoadOptions) fileResult {
	if _, diag := checkFile(file, data, opts); diag != nil {
		return fileResult{diags: Diagnostics{*diag}}
	}
	return decodeDocuments(file, data, opts)
}

// checkFile checks what can be checked of a file before it is parsed: its size,
// that it is text, and its documents' shape (scanShape). It returns the weight the
// file counts for in a load's decoding budget (decodeFiles), since parsing costs
// memory by nodes: nodeWeight per node of its largest document, or its size if
// that is more.
func checkFile(file string, data []byte, opts LoadOptions) (weight int64, diag *Diagnostic) {
	if int64(len(data)) > opts.MaxFileBytes {
		return 0, &Diagnostic{Severity: SeverityError, File: file, Message: fmt.Sprintf("file is %d bytes, more than the limit of %d", len(data), opts.MaxFileBytes)}
	}
	if msg, line := checkText(data); msg != "" {
		return 0, &Diagnostic{Severity: SeverityError, File: file, Line: line, Message: msg}
	}
	shape := scanShape(data, opts)
	if shape.failMsg != "" {
		return 0, &Diagnostic{Severity: SeverityError, File: file, Line: shape.failLine, Message: shape.failMsg}
	}
	return max(int64(len(data)), int64(shape.most)*nodeWeight), nil
}

// nodeWeight is what a node the pre-scan counts weighs in the decoding budget, in
// bytes. The parser's tree costs up to about 1,200 bytes of memory per counted
// node (three nodes each, with the garbage collector's slack), so a budget of B
// bytes stands for about 30×B of memory (BenchmarkLoadPeakRSS). Real manifests
// have about 12 bytes per counted node (a Deployment of 789 bytes counts 66), so
// they weigh about 2.7 times their size.
const nodeWeight = 32

// decodeDocuments parses and decodes the documents of a file checkFile accepted.
func decodeDocuments(file string, data []byte, opts LoadOptions) fileResult {
	d := &decoder{file: file}
	var res fileResult
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for count := 1; ; count++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.diags = append(d.diags, yamlDiagnostic(file, err))
			break
		}
		if count > opts.MaxDocumentsPerFile {
			d.errorf(&doc, "file has more than %d YAML documents", opts.MaxDocumentsPerFile)
			break
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // an empty document, e.g. after a trailing ---
		}
		if !d.addDocument(&res, doc.Content[0], &count, opts) {
			break
		}
	}
	res.diags = append(res.diags, d.diags...)
	return res
}

// checkText refuses what is not text before the YAML parser sees it, returning
// why and the line of the first offending byte.
func checkText(data []byte) (msg string, line int) {
	lineAt := func(i int) int { return 1 + bytes.Count(data[:i], []byte{'\n'}) }
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return "file contains a NUL byte: manifests must be UTF-8 text, not binary", lineAt(i)
	}
	if utf8.Valid(data) {
		return "", 0
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return "file is not valid UTF-8", lineAt(i)
		}
		i += size
	}
	return "", 0
}

// yamlDiagnostic turns a YAML syntax error ("yaml: line 3: could not find
// expected ':'") into a located diagnostic.
func yamlDiagnostic(file string, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
				// yaml.v3 reports scanner errors at 1-based lines but parser errors
				// ("did not find expected ...") at the 0-based line of the construct
				// they were parsing.
				if strings.HasPrefix(msg, "did not find expected") {
					line++
				}
			}
		}
	}
	return Diagnostic{Severity: SeverityError, File: file, Line: line, Message: "invalid YAML: " + msg}
}

// checkShape walks a document as the decoder will, aliases expanded, and
// refuses one that nests deeper than opts.MaxDepth or has more than
// opts.MaxNodesPerDocument nodes. Alias bombs and alias cycles (which the
// parser accepts) fail here, after bounded work, before anything expands them.
func checkShape(root *yaml.Node, opts LoadOptions) (*yaml.Node, string) {
	budget := opts.MaxNodesPerDocument
	var walk func(n *yaml.Node, depth int) (*yaml.Node, string)
	walk = func(n *yaml.Node, depth int) (*yaml.Node, string) {
		if budget--; budget < 0 {
			// The budget is the document's, not the node's where it ran out.
			return root, fmt.Sprintf("document has more than %d YAML nodes once aliases are expanded", opts.MaxNodesPerDocument)
		}
		switch n.Kind {
		case yaml.AliasNode:
			if n.Alias != nil {
				return walk(n.Alias, depth)
			}
		case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
			if depth >= opts.MaxDepth {
				return n, fmt.Sprintf("document nests deeper than %d levels", opts.MaxDepth)
			}
			for _, c := range n.Content {
				if at, msg := walk(c, depth+1); msg != "" {
					return at, msg
				}
			}
		}
		return nil, ""
	}
	return walk(root, 0)
}

// document decodes, defaults and validates one document's object, returning it
// with its references to other objects, what it counts against the revision's
// limits and, for a Service, what it selects. It returns a nil object for a document
// that is not an object Shoal loads; an object with errors is returned for the checks
// across objects, and its file result is discarded anyway.
func (d *decoder) document(root *yaml.Node, opts LoadOptions) (Object, []reference, usage, *selection) {
	if at, msg := checkShape(root, opts); msg != "" {
		d.errorf(at, "%s", msg)
		return nil, nil, usage{}, nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "a manifest must be a mapping with apiVersion and kind, got %s", d.describe(root))
		return nil, nil, usage{}, nil
	}
	obj, kt := d.newObject(root)
	if obj == nil {
		return nil, nil, usage{}, nil
	}
	setSource(obj, Source{File: d.file, Line: root.Line})
	errorsBefore := d.errorCount()
	_, d.secret = obj.(*Secret)
	d.value(root, reflect.ValueOf(obj).Elem(), kt)
	d.secret = false
	if d.errorCount() > errorsBefore {
		// Validating a half-decoded object would repeat each error as a missing
		// field. The object still counts for duplicates, so that its references
		// are not also reported as missing.
		return obj, nil, usage{object: position{file: d.file, line: root.Line}}, nil
	}
	r := &report{file: d.file, loc: nodeLocator{root: root}}
	if o, ok := obj.(*Namespace); ok && o.Metadata.Namespace != "" {
		r.warnf(metadataNamespacePath, "ignored: a Namespace does not belong to a namespace")
		o.Metadata.Namespace = ""
	}
	SetDefaults(obj)
	validateObject(r, obj)
	use := objectUsage(r, obj, opts)
	d.diags = append(d.diags, r.diags...)
	return obj, objectReferences(r, obj), use, objectSelection(r, obj)
}

func (d *decoder) errorCount() int {
	n := 0
	for _, diag := range d.diags {
		if diag.Severity == SeverityError {
			n++
		}
	}
	return n
}

// fieldErrorf reports an error about a top-level field.
func (d *decoder) fieldErrorf(n *yaml.Node, field, format string, args ...any) {
	d.push(segment{name: field})
	d.errorf(n, format, args...)
	d.pop()
}

var metadataNamespacePath = (*fieldPath)(nil).child("metadata").child("namespace")

// newObject checks apiVersion and kind and returns an empty object of that kind
// with its Kubernetes type, or nil after reporting why the document is not one
// Shoal loads. As in Kubernetes, a kind a built-in API group does not serve in
// that version is an error ("no matches for kind"); a real kind Shoal does not
// run, and any kind of another group (a custom resource), is skipped with a warning.
func (d *decoder) newObject(root *yaml.Node) (Object, k8sTypeID) {
	var tm TypeMeta
	for _, f := range []struct {
		name string
		dst  *string
	}{{"apiVersion", &tm.APIVersion}, {"kind", &tm.Kind}} {
		key, val := lookupKey(root, f.name)
		if key == nil || isEmpty(val) {
			d.fieldErrorf(root, f.name, "required: every manifest needs apiVersion and kind")
			return nil, 0
		}
		if val = resolveAlias(val); val.Kind != yaml.ScalarNode || val.ShortTag() != tagStr {
			d.fieldErrorf(val, f.name, "expected a string, got %s", d.describe(val))
			return nil, 0
		}
		*f.dst = val.Value
	}
	if kt, ok := k8sObjectType(tm.APIVersion, tm.Kind); ok {
		switch tm.Kind {
		case KindDeployment:
			return &Deployment{}, kt
		case KindService:
			return &Service{}, kt
		case KindConfigMap:
			return &ConfigMap{}, kt
		case KindSecret:
			return &Secret{}, kt
		case KindNamespace:
			return &Namespace{}, kt
		}
	}
	if !builtinGroup(tm.APIVersion) || servedKind(tm.APIVersion, tm.Kind) {
		name := ""
		if _, meta := lookupKey(root, "metadata"); meta != nil && resolveAlias(meta).Kind == yaml.MappingNode {
			if _, n := lookupKey(resolveAlias(meta), "name"); n != nil && n.Kind == yaml.ScalarNode {
				name = " " + strconv.Quote(n.Value)
			}
		}
		msg := fmt.Sprintf("kind %s%s (%s) is not supported by Shoal: skipped", tm.Kind, name, tm.APIVersion)
		feature := "kind " + tm.Kind
		if f, ok := kindFeatures[tm.Kind]; ok {
			msg, feature = msg+" ("+f.why+")", f.feature
		}
		d.warn(root, feature, msg)
		return nil, 0
	}
	noMatch := fmt.Sprintf("no matches for kind %q in version %q", tm.Kind, tm.APIVersion)
	if versions := servedVersions(tm.Kind); len(versions) > 0 {
		_, val := lookupKey(root, "apiVersion")
		d.fieldErrorf(val, "apiVersion", "%s: use %s", noMatch, strings.Join(versions, " or "))
		return nil, 0
	}
	_, val := lookupKey(root, "kind")
	if hint := d.suggest(tm.Kind, servedKindNames(tm.APIVersion)); hint != "" {
		d.fieldErrorf(val, "kind", "%s: did you mean %s?", noMatch, hint)
	} else {
		d.fieldErrorf(val, "kind", "%s", noMatch)
	}
	return nil, 0
}

// servedKindNames yields the kinds apiVersion serves, then those of every other
// built-in version, for suggest.
func servedKindNames(apiVersion string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for _, same := range []bool{true, false} {
			for _, k := range k8sKinds {
				if !k.removed && (k.apiVersion == apiVersion) == same && !yield(k.kind) {
					return
				}
			}
		}
	}
}

func setSource(o Object, s Source) {
	switch o := o.(type) {
	case *Namespace:
		o.Source = s
	case *Deployment:
		o.Source = s
	case *Service:
		o.Source = s
	case *ConfigMap:
		o.Source = s
	case *Secret:
		o.Source = s
	}
}
