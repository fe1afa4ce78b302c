package spec

import (
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// A List (`kind: List` as `kubectl get -o yaml` writes it, or a typed list such as
// DeploymentList) holds objects in its items; kubectl apply applies each item as its own
// object, and so does Load: each item is decoded as if it were a document of the file,
// located at its own line, and counts as one document against MaxDocumentsPerFile and
// as one object against MaxObjects. The List itself is one YAML document, which the
// parser builds whole, so it must fit MaxNodesPerDocument. Kubernetes does not nest
// lists: an item that is itself a List is an error.

// listKind reports whether root is a List: a mapping whose kind is List, or ends in List
// (DeploymentList, ServiceList, …) and which has items.
func listKind(root *yaml.Node) bool {
	if root.Kind != yaml.MappingNode {
		return false
	}
	_, kind := lookupKey(root, "kind")
	if kind == nil {
		return false
	}
	kind = resolveAlias(kind)
	if kind.Kind != yaml.ScalarNode || kind.ShortTag() != tagStr || !strings.HasSuffix(kind.Value, "List") {
		return false
	}
	if kind.Value == "List" {
		return true
	}
	items, _ := lookupKey(root, "items")
	return items != nil
}

// addDocument decodes one document into res: its object or, for a List, each item's.
// count is the number of documents of the file so far, this one included; each item
// after a List's first counts one more. It returns false when the file is over
// MaxDocumentsPerFile, which it has reported.
func (d *decoder) addDocument(res *fileResult, root *yaml.Node, count *int, opts LoadOptions) bool {
	root = resolveAlias(root)
	if !listKind(root) {
		d.addObject(res, root, opts)
		return true
	}
	if at, msg := checkShape(root, opts); msg != "" {
		d.errorf(at, "%s", msg)
		return true
	}
	if key, val := lookupKey(root, "apiVersion"); key == nil || isEmpty(val) {
		d.fieldErrorf(root, "apiVersion", "required: every manifest needs apiVersion and kind")
		return true
	}
	_, items := lookupKey(root, "items")
	if items == nil || isNull(resolveAlias(items)) {
		return true // an empty List
	}
	if items = resolveAlias(items); items.Kind != yaml.SequenceNode {
		d.fieldErrorf(items, "items", "expected a list of objects, got %s", d.describe(items))
		return true
	}
	for i, item := range items.Content {
		if i > 0 {
			*count++
		}
		if *count > opts.MaxDocumentsPerFile {
			d.errorf(item, "file has more than %d YAML documents and List items", opts.MaxDocumentsPerFile)
			return false
		}
		if item = resolveAlias(item); listKind(item) {
			d.errorf(item, "a List item cannot itself be a List: Kubernetes does not nest them")
			continue
		}
		d.addObject(res, item, opts)
	}
	return true
}

// addObject decodes one object into res.
func (d *decoder) addObject(res *fileResult, root *yaml.Node, opts LoadOptions) {
	obj, refs, use, sel := d.document(root, opts)
	if obj != nil {
		res.objects = append(res.objects, obj)
		res.refs = append(res.refs, refs...)
		res.uses = append(res.uses, use)
	}
	if sel != nil {
		res.selections = append(res.selections, *sel)
	}
}
