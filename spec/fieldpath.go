package spec

import (
	"fmt"
	"strconv"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// fieldPath locates a field inside one object, like Kubernetes' field.Path: a
// linked list from the leaf up, so that validation builds paths cheaply and
// renders one only when it reports something. The nil *fieldPath is the object.
type fieldPath struct {
	parent *fieldPath
	segment
}

// segment is one step of a field path: a struct field, a map key or a list index.
type segment struct {
	name  string // field name or map key
	index int
	kind  segmentKind
}

type segmentKind uint8

const (
	segmentField segmentKind = iota
	segmentKey
	segmentIndex
)

func (p *fieldPath) child(name string) *fieldPath {
	return &fieldPath{parent: p, segment: segment{name: name, kind: segmentField}}
}

func (p *fieldPath) key(k string) *fieldPath {
	return &fieldPath{parent: p, segment: segment{name: k, kind: segmentKey}}
}

func (p *fieldPath) at(i int) *fieldPath {
	return &fieldPath{parent: p, segment: segment{index: i, kind: segmentIndex}}
}

// segments returns the path from the root down.
func (p *fieldPath) segments() []segment {
	n := 0
	for q := p; q != nil; q = q.parent {
		n++
	}
	segs := make([]segment, n)
	for q := p; q != nil; q = q.parent {
		n--
		segs[n] = q.segment
	}
	return segs
}

func (p *fieldPath) String() string { return renderPath(p.segments()) }

// renderPath renders a path as Kubernetes users read it: fields joined by dots,
// list indexes in brackets, and map keys after a dot when they read as a plain
// word (resources.limits.memory) or in brackets when they hold dots or slashes
// (metadata.labels[app.kubernetes.io/name]).
func renderPath(segs []segment) string {
	var b strings.Builder
	for i, s := range segs {
		switch {
		case s.kind == segmentIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		case s.kind == segmentKey && !isPlainKey(s.name):
			b.WriteByte('[')
			b.WriteString(s.name)
			b.WriteByte(']')
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.name)
		}
	}
	return b.String()
}

func isPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(isAlphaNum(c) || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// locator turns a field path of one object into a line of its file.
type locator interface {
	// line returns the line of the field at p or, when p is absent from the
	// source (a defaulted field, a missing required one), of its nearest
	// ancestor present; found says whether p itself is present.
	line(p *fieldPath) (line int, found bool)
}

// nodeLocator finds fields in the YAML document an object was decoded from.
type nodeLocator struct{ root *yaml.Node }

func (l nodeLocator) line(p *fieldPath) (int, bool) {
	n, line := resolveAlias(l.root), l.root.Line
	for _, s := range p.segments() {
		var next *yaml.Node
		switch {
		case s.kind == segmentIndex && n.Kind == yaml.SequenceNode:
			if s.index < len(n.Content) {
				next = n.Content[s.index]
				line = next.Line
			}
		case s.kind != segmentIndex && n.Kind == yaml.MappingNode:
			var key *yaml.Node
			key, next = lookupKey(n, s.name)
			if key != nil {
				line = key.Line
			}
		}
		if next == nil {
			return line, false
		}
		n = resolveAlias(next)
	}
	return line, true
}

// objectLocator knows only where the object starts: objects built in code
// rather than decoded are reported at their Source line.
type objectLocator struct{ line0 int }

func (l objectLocator) line(*fieldPath) (int, bool) { return l.line0, false }

// lookupKey finds name among a mapping's keys, then among the mappings it
// merges with "<<", as the YAML merge key gives explicit keys precedence.
func lookupKey(m *yaml.Node, name string) (key, value *yaml.Node) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if isMergeKey(k) {
			merges = append(merges, m.Content[i+1])
			continue
		}
		if k.Kind == yaml.ScalarNode && k.Value == name {
			return k, m.Content[i+1]
		}
	}
	for _, src := range merges {
		for _, sm := range mergeSources(src) {
			if k, v := lookupKey(sm, name); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// report collects the diagnostics about one object, locating each by field path.
type report struct {
	file  string
	loc   locator
	diags Diagnostics
	// secret leaves values out of messages: the object is a Secret (see decoder.secret).
	secret bool
}

func (r *report) add(sev Severity, p *fieldPath, msg string) {
	line, _ := r.loc.line(p)
	r.diags = append(r.diags, Diagnostic{Severity: sev, File: r.file, Line: line, Path: p.String(), Message: msg})
}

func (r *report) errorf(p *fieldPath, format string, args ...any) {
	r.add(SeverityError, p, fmt.Sprintf(format, args...))
}

func (r *report) warnf(p *fieldPath, format string, args ...any) {
	r.add(SeverityWarning, p, fmt.Sprintf(format, args...))
}

// featureWarnf warns about a use of the named feature (see Diagnostic.Feature).
func (r *report) featureWarnf(p *fieldPath, feature, format string, args ...any) {
	r.warnf(p, format, args...)
	r.diags[len(r.diags)-1].Feature = feature
}

// present reports whether the source declares the field at p; it is false for objects built in code.
func (r *report) present(p *fieldPath) bool {
	_, found := r.loc.line(p)
	return found
}
