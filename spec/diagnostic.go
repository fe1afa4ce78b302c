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
