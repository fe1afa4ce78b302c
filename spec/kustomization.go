package spec

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Kustomizer renders kustomizations for Load. Package spec/kustomize has the one Shoal
// uses, built on kustomize's Go API; spec itself does not import kustomize, so that the
// rooms that only read manifests (the planner) stay free of its dependencies.
type Kustomizer interface {
	// Render builds the kustomization of each file of files (paths of kustomization
	// files in fsys, none in another's directory tree), reading nothing but fsys, and
	// returns one Rendering for each that is not itself a resource of another: those are
	// rendered as part of what uses them. Each Rendering reads at most limits.ReadBytes
	// from fsys and renders at most limits.OutputBytes.
	Render(fsys fs.FS, files []string, limits RenderLimits) []Rendering
}

// RenderLimits bound what rendering one kustomization may cost, in bytes.
type RenderLimits struct {
	// FileBytes bounds each file read, as MaxFileBytes bounds a manifest.
	FileBytes int64
	// ReadBytes bounds all the reads of one kustomization together, bases included,
	// counting a file as often as it is read.
	ReadBytes int64
	// OutputBytes bounds what one kustomization renders.
	OutputBytes int64
}

// Rendering is what one kustomization renders to: an error, or its objects, each as a
// YAML document with the kind and name it was rendered with.
type Rendering struct {
	// File is the kustomization file, as in Render's files.
	File    string
	Objects []RenderedObject
	Err     error
}

// RenderedObject is one object a kustomization rendered.
type RenderedObject struct {
	Kind, Name string
	YAML       []byte
}

// kustomizationNames are the file names kustomize reads a kustomization from, in the
// order it looks for them.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// KustomizationIn returns the path of the kustomization file (kustomization.yaml,
// kustomization.yml or Kustomization, the first kustomize finds) in directory dir of
// fsys, or "" when it has none.
func KustomizationIn(fsys fs.FS, dir string) string {
	for _, name := range kustomizationNames {
		p := path.Join(dir, name)
		if info, err := fs.Stat(fsys, p); err == nil && !info.IsDir() {
			return p
		}
	}
	return ""
}

// Rendering costs bounded by the file limit: a kustomization renders at most as much as
// one manifest file may hold, and reads at most kustomizeReadFactor times that (an
// overlay reads its bases, and some files are read more than once). Reads are bounded
// so that overlays that include each other's bases twice at every level (a "billion
// laughs" of directories) fail after a bounded amount of work, not at the end.
const kustomizeReadFactor = 2

// renderKustomizations renders the kustomizations of files with opts.Kustomizer, or,
// without one, warns that each is not loaded. Rendered objects are decoded as if each
// were a file of its own, and their diagnostics name the kustomization file and the
// object (relocate). What they render counts against MaxTotalBytes with the manifests'
// total so far.
func renderKustomizations(fsys fs.FS, files []string, total int64, opts LoadOptions) ([]fileResult, Diagnostics) {
	if len(files) == 0 {
		return nil, nil
	}
	var diags Diagnostics
	if opts.Kustomizer == nil {
		for _, f := range files {
			diags = append(diags, Diagnostic{Severity: SeverityWarning, File: f,
				Message: "kustomization not rendered: run `kustomize build` and commit its output; files under this directory are not loaded"})
		}
		return nil, diags
	}
	limits := RenderLimits{FileBytes: opts.MaxFileBytes, ReadBytes: kustomizeReadFactor * opts.MaxFileBytes, OutputBytes: opts.MaxFileBytes}
	// From the whole commit when Load reads one directory of it, so that a base outside
	// that directory can be reached; files are named relative to the directory again.
	root, prefix := fsys, ""
	if opts.Repository != nil && opts.Path != "" && opts.Path != "." {
		root, prefix = opts.Repository, strings.Trim(opts.Path, "/")+"/"
	}
	in := make([]string, len(files))
	for i, f := range files {
		in[i] = prefix + f
	}
	var results []fileResult
	for _, r := range opts.Kustomizer.Render(root, in, limits) {
		r.File = strings.TrimPrefix(r.File, prefix)
		if r.Err != nil {
			diags = append(diags, Diagnostic{Severity: SeverityError, File: r.File, Message: "kustomize build: " + strings.Join(strings.Fields(r.Err.Error()), " ")})
			continue
		}
		for _, o := range r.Objects {
			if total += int64(len(o.YAML)); total > opts.MaxTotalBytes {
				diags = append(diags, Diagnostic{Severity: SeverityError, File: r.File,
					Message: fmt.Sprintf("manifests and rendered kustomizations total more than %d bytes (%s)", opts.MaxTotalBytes, limitRevisionBytes)})
				return results, diags
			}
			res := decodeFile(r.File, o.YAML, opts)
			relocate(&res, r.File, fmt.Sprintf("%s %q as rendered", o.Kind, o.Name))
			results = append(results, res)
		}
	}
	return results, diags
}

// relocate places what a rendered object's decoding found at its kustomization file,
// since lines of kustomize's output are not lines of any file in the repository: every
// diagnostic and position gets file and line 0, and diagnostics end by naming the
// object: what (e.g. `Deployment "web" as rendered`).
func relocate(res *fileResult, file, what string) {
	at := func(p *position) { p.file, p.line = file, 0 }
	for i := range res.diags {
		res.diags[i].File, res.diags[i].Line = file, 0
		res.diags[i].Message += " (" + what + ")"
	}
	for _, o := range res.objects {
		setSource(o, Source{File: file})
	}
	for i := range res.refs {
		at(&res.refs[i].at)
		at(&res.refs[i].keyAt)
	}
	for i := range res.uses {
		at(&res.uses[i].object)
		at(&res.uses[i].at)
	}
	for i := range res.selections {
		at(&res.selections[i].at)
		for j := range res.selections[i].ports {
			at(&res.selections[i].ports[j].at)
		}
	}
}
