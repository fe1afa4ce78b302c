package spec

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
)

// Load reads every manifest (*.yaml, *.yml, and *.json files that are Kubernetes
// objects: jsonManifestKeys) under fsys, in sorted path order, skipping names that start
// with a dot (.git, .github, .gitlab-ci.yml) and not following symlinks. A directory with
// a kustomization file is not read file by file: opts.Kustomizer renders it, or, without
// one, it is skipped with a warning (renderKustomizations). A List's items load as
// objects of their own (addDocument). It decodes, defaults and validates every object, then checks
// duplicates and references across files and, when none of that found an error, what
// each Service selects (checkSelections, warnings only). The revision loads all-or-nothing: when
// any diagnostic is an error the Set is nil, and the diagnostics list every error
// of every file (except that exceeding a size or count limit stops the load).
// Diagnostics are in file and line order; warnings accompany a loaded Set too. A loaded
// Set holds each Deployment's InstanceHash, computed once: its objects are not to be
// modified after.
func Load(fsys fs.FS, opts LoadOptions) (*Set, Diagnostics) {
	if err := opts.Validate(); err != nil {
		return nil, Diagnostics{{Severity: SeverityError, File: ".", Message: err.Error()}}
	}
	opts = opts.withDefaults()
	list, diags := listManifests(fsys, opts)
	set := &Set{}
	if list.complete {
		var refs []reference
		var uses []usage
		var sels []selection
		results := decodeFiles(fsys, list.files, opts)
		rendered, renderDiags := renderKustomizations(fsys, list.kustomizations, list.total, opts)
		diags = append(diags, renderDiags...)
		for _, res := range append(results, rendered...) {
			diags = append(diags, res.diags...)
			refs = append(refs, res.refs...)
			uses = append(uses, res.uses...)
			sels = append(sels, res.selections...)
			for _, o := range res.objects {
				set.add(o)
			}
		}
		diags = append(diags, checkSet(set, refs)...)
		diags = append(diags, checkRevisionUsage(uses, opts)...)
		if !diags.HasErrors() {
			diags = append(diags, checkSelections(set, sels)...)
		}
	}
	sortDiagnostics(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	set.sortAll()
	set.hashAll()
	return set, diags
}

// listing is what listManifests finds: the manifest files, the kustomization files of
// the directories that are rendered instead (none under another), the bytes of the
// files, and whether the walk went through (complete) or a limit on the whole
// revision stopped it.
type listing struct {
	files          []manifestFile
	kustomizations []string
	total          int64
	complete       bool
}

// listManifests walks fsys for manifest files, enforcing the size and count
// limits from the sizes the directory reports, before reading anything. It is
// incomplete when a limit on the whole revision stopped it; a file that cannot be
// read is reported and left out, so that the others are still checked. A directory
// holding a kustomization file is not walked: its file is listed in kustomizations.
func listManifests(fsys fs.FS, opts LoadOptions) (list listing, diags Diagnostics) {
	files, total := list.files, list.total
	complete := true
	fail := func(file, format string, args ...any) {
		diags = append(diags, Diagnostic{Severity: SeverityError, File: file, Message: fmt.Sprintf(format, args...)})
	}
	warn := func(file, msg string) {
		diags = append(diags, Diagnostic{Severity: SeverityWarning, File: file, Message: msg})
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fail(p, "cannot read: %v", err)
			return nil // WalkDir skips what it could not read; keep listing the rest
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if k := KustomizationIn(fsys, p); k != "" {
				list.kustomizations = append(list.kustomizations, k)
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			// Symlinks could reach outside the repository; say what is not read.
			if isManifestName(d.Name()) {
				warn(p, "not a regular file (a symlink?): skipped")
			} else if info, err := fs.Stat(fsys, p); err == nil && info.IsDir() {
				warn(p, "symlink to a directory: not followed")
			}
			return nil
		}
		if !isManifestName(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			fail(p, "cannot stat: %v", err)
			return nil
		}
		if len(files) >= opts.MaxFiles {
			fail(p, "more than %d manifest files", opts.MaxFiles)
			complete = false
			return fs.SkipAll
		}
		if info.Size() > opts.MaxFileBytes && path.Ext(p) == ".json" {
			// Most large JSON files are not manifests (package-lock.json): one that is
			// could not load anyway.
			warn(p, fmt.Sprintf("JSON file of %d bytes, more than the limit of %d (%s): not read", info.Size(), opts.MaxFileBytes, limitFileBytes))
			return nil
		}
		if info.Size() > opts.MaxFileBytes {
			fail(p, "file is %d bytes, more than the limit of %d (%s)", info.Size(), opts.MaxFileBytes, limitFileBytes)
			return nil
		}
		if total += info.Size(); total > opts.MaxTotalBytes {
			fail(p, "manifests total more than %d bytes (%s)", opts.MaxTotalBytes, limitRevisionBytes)
			complete = false
			return fs.SkipAll
		}
		files = append(files, manifestFile{name: p, size: info.Size()})
		return nil
	})
	if err != nil {
		fail(".", "cannot list manifests: %v", err)
		complete = false
	}
	list.files, list.total, list.complete = files, total, complete
	return list, diags
}

// manifestFile is a manifest as listed: its path and the size the directory reports.
type manifestFile struct {
	name string
	size int64
}

// isManifestName reports whether a file's name is a manifest's: a .json one loads only
// when its contents are an object's (decodeFiles).
func isManifestName(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// decodeFiles reads files and decodes them on one worker per CPU, since parsing
// YAML is most of the cost of a load, and returns their results in files' order.
// Only the calling goroutine touches fsys, which need not be safe for concurrent
// use. Decoding costs memory in proportion to a file's weight (checkFile: 32 bytes
// per YAML node of its largest document, or its size if that is more), so files
// are handed out only while they weigh at most opts.MaxFileBytes together: many
// small files still use every CPU, while large or dense ones go one at a time,
// and what a load costs does not grow with the number of CPUs. The checks that
// give the weight (checkFile) run on the calling goroutine, at about 160 MB/s.
// It returns when every worker has finished.
func decodeFiles(fsys fs.FS, files []manifestFile, opts LoadOptions) []fileResult {
	type job struct {
		index int
		data  []byte
		cost  int64
	}
	results := make([]fileResult, len(files))
	workers := min(runtime.GOMAXPROCS(0), len(files))
	jobs := make(chan job, workers)
	budget := newByteBudget(opts.MaxFileBytes)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				results[j.index] = decodeDocuments(files[j.index].name, j.data, opts)
				budget.release(j.cost)
			}
		})
	}
	for i, f := range files {
		// The size the listing saw: a file that grew since is refused by readManifest.
		cost := budget.acquire(f.size)
		data, err := readManifest(fsys, f.name, opts.MaxFileBytes)
		if err != nil {
			budget.release(cost)
			results[i].diags = Diagnostics{{Severity: SeverityError, File: f.name, Message: err.Error()}}
			continue
		}
		if path.Ext(f.name) == ".json" {
			if skip, diags := skipJSON(f.name, data); skip {
				budget.release(cost)
				results[i].diags = diags
				continue
			}
		}
		weight, diag := checkFile(f.name, data, opts)
		if diag != nil {
			budget.release(cost)
			results[i].diags = Diagnostics{*diag}
			continue
		}
		// What is held and what is wanted stay within the budget together, or this
		// would wait forever.
		if want := min(weight, budget.total); want > cost {
			cost += budget.acquire(want - cost)
		}
		jobs <- job{index: i, data: data, cost: cost}
	}
	close(jobs)
	wg.Wait()
	return results
}

// byteBudget bounds the bytes of manifests held for decoding at once.
type byteBudget struct {
	mu    sync.Mutex
	freed *sync.Cond
	free  int64
	total int64
}

func newByteBudget(total int64) *byteBudget {
	b := &byteBudget{free: total, total: total}
	b.freed = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes (at most the whole budget, so that the largest file
// allowed still gets its turn, alone) are free, takes them and returns how many it took.
func (b *byteBudget) acquire(n int64) int64 {
	n = min(max(n, 1), b.total)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n {
		b.freed.Wait()
	}
	b.free -= n
	return n
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.freed.Broadcast()
}

// readManifest reads a file of at most limit bytes, refusing a longer one even if
// it grew after it was listed.
func readManifest(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is more than the limit of %d bytes (%s)", limit, limitFileBytes)
	}
	return data, nil
}
