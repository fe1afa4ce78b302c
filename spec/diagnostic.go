package spec

import (
	"fmt"
	"strings"
)

// Severity says whether a Diagnostic rejects the revision.
type Severity string

// Severities of diagnostics.
const (
	// SeverityError rejects the whole revision.
	SeverityError Severity = "error"
	// SeverityWarning is reported but loads: an unsupported kind or a field Shoal does not honour.
	SeverityWarning Severity = "warning"
)

// Diagnostic is one finding about the manifests, located by file, line and field path.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	// File is relative to the manifest root, slash-separated.
	File string `json:"file"`
	// Line is 1-based; 0 when the finding concerns the file as a whole.
	Line int `json:"line,omitempty"`
	// Path is the field path, e.g. spec.template.spec.containers[0].image; empty for whole documents.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Feature names what a warning is about, stably, so that warnings about one
	// thing group as one (Grouped): a named feature such as "serviceAccount", a
	// field path without list indexes such as
	// "spec.template.spec.containers[].stdin", or "kind Ingress". Empty for
	// findings that do not group.
	Feature string `json:"feature,omitempty"`
}

// String renders "file:line: path: message", leaving out what is unknown.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
	}
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every finding of one load, in file and line order.
type Diagnostics []Diagnostic

// HasErrors reports whether any finding rejects the revision.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns only the findings that reject the revision.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns only the findings that do not reject the revision.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Error makes Diagnostics usable as an error: every error finding, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, 0, len(ds))
	for _, d := range ds.Errors() {
		lines = append(lines, d.String())
	}
	return strings.Join(lines, "\n")
}

// Group is one finding, or several warnings about the same feature, for people to read.
type Group struct {
	// First is the first finding of the group, in file and line order.
	First Diagnostic
	// Count is how many findings the group holds; 1 for every error.
	Count int
}

// String renders a single finding as Diagnostic.String does and a group of
// several as "feature: warning: message (×N, first at file:line)".
func (g Group) String() string {
	if g.Count == 1 {
		return g.First.String()
	}
	at := g.First.File
	if g.First.Line > 0 {
		at += ":" + itoa(g.First.Line)
	}
	msg := g.First.Message
	if s, ok := featureSummaries[g.First.Feature]; ok {
		msg = s
	}
	return fmt.Sprintf("%s: warning: %s (×%d, first at %s)", g.First.Feature, msg, g.Count, at)
}

// Grouped folds the warnings that share a Feature into one Group each, kept where
// the first of them is; errors and warnings without a Feature stay one a Group.
// People read the groups; tools read every Diagnostic.
func (ds Diagnostics) Grouped() []Group {
	var out []Group
	byFeature := map[string]int{}
	for _, d := range ds {
		if d.Severity == SeverityWarning && d.Feature != "" {
			if i, ok := byFeature[d.Feature]; ok {
				out[i].Count++
				continue
			}
			byFeature[d.Feature] = len(out)
		}
		out = append(out, Group{First: d, Count: 1})
	}
	return out
}
