// Package kustomize renders the kustomizations of a revision for spec.Load with
// kustomize's Go API (sigs.k8s.io/kustomize/api/krusty), as Flux's kustomize-controller
// does, but reading nothing except the commit: kustomize sees an in-memory file system
// that holds the names of the commit's files and reads their contents, bounded, from the
// fs.FS that Load was given. It must not reach the network, the host's file system or
// other programs: remote bases and files (URLs, Git repositories) are refused before
// kustomize runs, plugins are off except kustomize's built-in ones, and Helm charts and
// KRM functions are off.
//
// It is its own package so that spec, which every room imports, does not depend on
// kustomize.
package kustomize

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	sigsyaml "sigs.k8s.io/yaml"
	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/shoalhq/shoal/spec"
)

// Renderer is the spec.Kustomizer Shoal uses.
type Renderer struct{}

var _ spec.Kustomizer = Renderer{}

// kustomize's work grows faster than its input: each kustomization it loads re-reads
// the bases it uses, adding a resource to what it has accumulated costs in proportion
// to what is there, and a patch costs about a millisecond for each resource it is
// applied to (measured on a busy 2-core machine: a tree of overlays of one Deployment,
// 512 copies in 9 levels, took 4 s, and 100 overlays a level would take hours; 100
// patches of 250 ConfigMaps took 29 s and allocated 13 GB). So besides bytes, one
// rendering is bounded in what drives that work, counted as kustomize reads files:
const (
	// maxReferenceDepth bounds how deeply kustomizations may use one another (overlays
	// of overlays); it also bounds the pre-check's recursion.
	maxReferenceDepth = 20
	// maxKustomizationLoads bounds the kustomization files read, each time it is read.
	maxKustomizationLoads = 100
	// maxResourcesRead bounds the YAML documents and List items of the other files
	// read (resources, patches, generator inputs), each time they are read.
	maxResourcesRead = 500
	// maxOperations bounds the patches, replacement targets, images, replicas and
	// vars the kustomizations read ask for, each time one is read.
	maxOperations = 500
	// maxOperationsTimesResources bounds the product of the two counts, which bounds
	// the patches applied to resources: 10 patches of 499 ConfigMaps took 2.2 s (and
	// 499 ConfigMaps through 20 levels of overlays 1.4 s).
	maxOperationsTimesResources = 5_000
)

// ErrRemote is returned for a reference to anything outside the commit.
var ErrRemote = errors.New("remote bases and files are not supported: Shoal renders only the files of the commit")

// buildMu serializes builds: kustomize keeps the OpenAPI schema a build uses in
// package-level state (as Flux's kustomize-controller also found, and serializes).
var buildMu sync.Mutex

// Render renders each kustomization of files that no other of files uses as a
// resource or component (spec.Kustomizer). It is safe for concurrent use.
func (Renderer) Render(fsys fs.FS, files []string, limits spec.RenderLimits) []spec.Rendering {
	c := &checker{fsys: fsys, limits: limits, parsed: map[string]*parsed{}}
	used := map[string]bool{}
	for _, f := range files {
		if p := c.parse(f); p.err == nil {
			for _, dir := range p.kustomizationDirs {
				used[dir] = true
			}
		}
	}
	// A kustomization that another uses is rendered as part of it, unless nothing
	// that is rendered reaches it (a cycle, which kustomize then reports).
	reached := map[string]bool{}
	var reach func(f string)
	reach = func(f string) {
		if reached[f] {
			return
		}
		reached[f] = true
		for _, dir := range c.parse(f).kustomizationDirs {
			reach(spec.KustomizationIn(fsys, dir))
		}
	}
	for _, f := range files {
		if !used[path.Dir(f)] {
			reach(f)
		}
	}
	var out []spec.Rendering
	for _, f := range files {
		if used[path.Dir(f)] && reached[f] {
			continue // rendered by what uses it
		}
		objs, err := c.render(f)
		out = append(out, spec.Rendering{File: f, Objects: objs, Err: err})
	}
	return out
}

// checker parses kustomization files once each and remembers what they reference.
type checker struct {
	fsys   fs.FS
	limits spec.RenderLimits
	parsed map[string]*parsed
}

// parsed is what one kustomization file says, as far as the pre-check needs it.
type parsed struct {
	err error
	// operations is what it asks kustomize to do to its resources (operations).
	operations int
	// kustomizationDirs are the directories of the commit it uses as resources,
	// components, generators, transformers or validators, which hold a kustomization
	// of their own.
	kustomizationDirs []string
}

// parse reads and checks the kustomization file at file (a path in fsys); its error
// does not name file.
func (c *checker) parse(file string) *parsed {
	if p, ok := c.parsed[file]; ok {
		return p
	}
	p := &parsed{}
	c.parsed[file] = p
	data, err := readFile(c.fsys, file, c.limits.FileBytes)
	if err != nil {
		p.err = err
		return p
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		p.err = err
		return p
	}
	k.FixKustomization()
	dir := path.Dir(file)
	p.operations = c.operations(dir, &k)
	for _, r := range references(&k) {
		local, err := localPath(dir, r.value)
		if err != nil {
			p.err = fmt.Errorf("%s %q: %w", r.field, r.value, err)
			return p
		}
		if !r.dirAllowed {
			continue
		}
		if info, err := fs.Stat(c.fsys, local); err == nil && info.IsDir() {
			if spec.KustomizationIn(c.fsys, local) == "" {
				p.err = fmt.Errorf("%s %q: directory has no kustomization file", r.field, r.value)
				return p
			}
			p.kustomizationDirs = append(p.kustomizationDirs, local)
		}
	}
	return p
}

// operations counts the transformations k asks for: each patch, image, replica count
// and var, and each field path of each replacement target, including those of the
// replacement files it names (read here, within the file limit).
func (c *checker) operations(dir string, k *types.Kustomization) int {
	n := len(k.Patches) + len(k.PatchesStrategicMerge) + len(k.PatchesJson6902) +
		len(k.Images) + len(k.Replicas) + len(k.Vars)
	count := func(r types.Replacement) {
		for _, t := range r.Targets {
			if t != nil {
				n += max(len(t.FieldPaths), 1)
			}
		}
	}
	for _, r := range k.Replacements {
		count(r.Replacement)
		if r.Path == "" {
			continue
		}
		local, err := localPath(dir, r.Path)
		if err != nil {
			continue // refused by parse
		}
		data, err := readFile(c.fsys, local, c.limits.FileBytes)
		if err != nil {
			continue // kustomize will say so
		}
		var list []types.Replacement
		var one types.Replacement
		if err := sigsyaml.Unmarshal(data, &list); err == nil {
			for _, r := range list {
				count(r)
			}
		} else if err := sigsyaml.Unmarshal(data, &one); err == nil {
			count(one)
		}
	}
	return n
}

// check checks file and every kustomization it uses, to depth.
func (c *checker) check(file string, depth int, seen map[string]bool) error {
	if depth > maxReferenceDepth {
		return fmt.Errorf("%s: kustomizations use one another more than %d deep", file, maxReferenceDepth)
	}
	if seen[file] {
		return nil
	}
	seen[file] = true
	p := c.parse(file)
	if p.err != nil && depth > 0 {
		return fmt.Errorf("in %s, which it uses: %w", file, p.err)
	}
	if p.err != nil {
		return p.err
	}
	for _, dir := range p.kustomizationDirs {
		if err := c.check(spec.KustomizationIn(c.fsys, dir), depth+1, seen); err != nil {
			return err
		}
	}
	return nil
}

// render checks the kustomization at file and everything it uses, then builds it
// with krusty over the commit's files.
func (c *checker) render(file string) ([]spec.RenderedObject, error) {
	seen := map[string]bool{}
	if err := c.check(file, 0, seen); err != nil {
		return nil, err
	}
	mem := &commitFS{FileSystem: filesys.MakeFsInMemory(), fsys: c.fsys, limits: c.limits, operations: map[string]int{}}
	for f := range seen {
		mem.operations[f] = c.parse(f).operations
	}
	// kustomize may read, with the default load restrictions, only files under the
	// directory of each kustomization it builds: those trees are all it needs.
	var dirs []string
	for f := range seen {
		dirs = append(dirs, path.Dir(f))
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		if err := mem.addTree(dir); err != nil {
			return nil, err
		}
	}
	return build(mem, path.Join("/", path.Dir(file)), c.limits.OutputBytes)
}

// build runs kustomize on the kustomization in dir of mem and returns its objects, at
// most limit bytes of them. A panic in kustomize is an error of this kustomization, as
// Flux also treats it, not the end of the process.
func build(mem *commitFS, dir string, limit int64) (objs []spec.RenderedObject, err error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			objs, err = nil, fmt.Errorf("kustomize failed: %v", r)
		}
	}()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig() // built-ins only: no exec, no containers, no Helm
	m, err := krusty.MakeKustomizer(opts).Run(mem, dir)
	if err != nil {
		if mem.err != nil {
			return nil, mem.err // the limit kustomize ran into, rather than how it says so
		}
		return nil, err
	}
	var total int64
	for _, r := range m.Resources() {
		// Measured before it is written out, so that a small kustomization that copies
		// a large value many times is refused without the copies being made.
		if total += nodeBytes(r.YNode(), limit-total); total > limit {
			return nil, fmt.Errorf("renders more than %d bytes (max-file-bytes, which bounds a kustomization's output as it bounds a file)", limit)
		}
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		objs = append(objs, spec.RenderedObject{Kind: r.GetKind(), Name: r.GetName(), YAML: y})
	}
	return objs, nil
}

// nodeBytes adds up the lengths of n's scalars, a lower bound of its size in YAML,
// stopping once that is over limit.
func nodeBytes(n *kyaml.Node, limit int64) int64 {
	var total int64
	var walk func(n *kyaml.Node)
	walk = func(n *kyaml.Node) {
		if n == nil || total > limit {
			return
		}
		total += int64(len(n.Value)) + 1
		if n.Kind == kyaml.AliasNode {
			walk(n.Alias)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return total
}

// reference is one place a kustomization names a file or directory.
type reference struct {
	field, value string
	// dirAllowed is set for the fields whose entries may be kustomization
	// directories: resources, components, generators, transformers, validators.
	dirAllowed bool
}

// references lists every file and directory k names, from the fields kustomize
// loads something from. Fields whose entries may be inline YAML instead of a path
// (patchesStrategicMerge, generators, transformers, validators) are listed only for
// entries on one line, which is all a path can be.
func references(k *types.Kustomization) []reference {
	var refs []reference
	add := func(field string, dirAllowed bool, values ...string) {
		for _, v := range values {
			if v != "" {
				refs = append(refs, reference{field: field, value: v, dirAllowed: dirAllowed})
			}
		}
	}
	oneLine := func(values []string) []string {
		var out []string
		for _, v := range values {
			if !strings.Contains(strings.TrimSpace(v), "\n") {
				out = append(out, strings.TrimSpace(v))
			}
		}
		return out
	}
	add("resources", true, k.Resources...)
	add("components", true, k.Components...)
	add("crds", false, k.Crds...)
	add("configurations", false, k.Configurations...)
	add("generators", true, oneLine(k.Generators)...)
	add("transformers", true, oneLine(k.Transformers)...)
	add("validators", true, oneLine(k.Validators)...)
	for _, p := range k.PatchesStrategicMerge {
		add("patchesStrategicMerge", false, oneLine([]string{string(p)})...)
	}
	for _, p := range k.Patches {
		add("patches.path", false, p.Path)
	}
	for _, p := range k.PatchesJson6902 {
		add("patchesJson6902.path", false, p.Path)
	}
	for _, r := range k.Replacements {
		add("replacements.path", false, r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		add("configMapGenerator.files", false, fileSources(g.FileSources)...)
		add("configMapGenerator.envs", false, g.EnvSources...)
	}
	for _, g := range k.SecretGenerator {
		add("secretGenerator.files", false, fileSources(g.FileSources)...)
		add("secretGenerator.envs", false, g.EnvSources...)
	}
	add("openapi.path", false, k.OpenAPI["path"])
	return refs
}

// fileSources returns the paths of generator file sources, written "path" or "key=path".
func fileSources(sources []string) []string {
	out := make([]string, len(sources))
	for i, s := range sources {
		if _, p, ok := strings.Cut(s, "="); ok {
			s = p
		}
		out[i] = s
	}
	return out
}

// localPath resolves ref, named by a kustomization in dir, to a path in the commit,
// refusing what kustomize would fetch (a URL, a Git repository: it recognises
// github.com/… and user@host:… without a scheme) and what leaves the commit.
func localPath(dir, ref string) (string, error) {
	if remote(ref) {
		return "", ErrRemote
	}
	if path.IsAbs(ref) {
		return "", errors.New("absolute paths are not supported: name files relative to the kustomization")
	}
	p := path.Join(dir, ref)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("leaves the repository")
	}
	return p, nil
}

// remote reports whether kustomize would fetch ref rather than read it from the file
// system. It follows kustomize's git.NewRepoSpecFromURL and loader.IsRemoteFile, which
// ignore case: a scheme (https://, ssh://, file://, …), github.com/… or github.com:…,
// and a user@ prefix (scp-like user@host:path) all mean a repository or a URL. The
// git:: prefix kustomize strips first.
func remote(ref string) bool {
	ref = strings.ToLower(strings.TrimSpace(ref))
	ref = strings.TrimPrefix(ref, "git::")
	return strings.Contains(ref, "://") || strings.HasPrefix(ref, "github.com/") ||
		strings.HasPrefix(ref, "github.com:") || scpUser.MatchString(ref)
}

// scpUser is kustomize's pattern for the user of an scp-like Git address.
var scpUser = regexp.MustCompile(`^[a-z][a-z0-9-]*@`)

// readFile reads name from fsys, refusing one of more than limit bytes.
func readFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: file is more than %d bytes (max-file-bytes)", name, limit)
	}
	return data, nil
}

// commitFS is the file system kustomize sees: the commit's directory trees that it may
// read, as names in memory, whose contents ReadFile reads from fsys on demand, each
// file within FileBytes and all of them together within ReadBytes.
type commitFS struct {
	filesys.FileSystem
	fsys   fs.FS
	limits spec.RenderLimits
	// operations holds each kustomization file's count of operations (checker.operations).
	operations map[string]int
	// What has been read so far, against the limits.
	read                         int64
	loads, resources, operationN int
	// err is the first limit a read ran into.
	err error
}

// addTree adds the names of dir's regular files and directories, skipping .git.
func (c *commitFS) addTree(dir string) error {
	return fs.WalkDir(c.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && d.Name() == ".git":
			return fs.SkipDir
		case d.IsDir():
			return c.FileSystem.MkdirAll(path.Join("/", p))
		case d.Type().IsRegular():
			return c.FileSystem.WriteFile(path.Join("/", p), nil)
		}
		return nil // symlinks are not followed, as spec.Load does not follow them
	})
}

// ReadFile reads a file of the commit, within the limits.
func (c *commitFS) ReadFile(name string) ([]byte, error) {
	if !c.FileSystem.Exists(name) || c.FileSystem.IsDir(name) {
		return c.FileSystem.ReadFile(name) // kustomize's own error
	}
	fail := func(err error) ([]byte, error) {
		if c.err == nil {
			c.err = err
		}
		return nil, err
	}
	rel := strings.TrimPrefix(path.Clean(name), "/")
	data, err := readFile(c.fsys, rel, c.limits.FileBytes)
	if err != nil {
		return fail(err)
	}
	const repeat = "; a base used twice counts twice: do overlays include the same bases many times? Run `kustomize build` and commit its output instead"
	if c.read += int64(len(data)); c.read > c.limits.ReadBytes {
		return fail(fmt.Errorf("reads more than %d bytes of files (twice max-file-bytes)%s", c.limits.ReadBytes, repeat))
	}
	if ops, ok := c.operations[rel]; ok {
		if c.loads++; c.loads > maxKustomizationLoads {
			return fail(fmt.Errorf("loads more than %d kustomizations%s", maxKustomizationLoads, repeat))
		}
		if c.operationN += ops; c.operationN > maxOperations {
			return fail(fmt.Errorf("asks for more than %d patches, replacement targets, images, replicas and vars%s", maxOperations, repeat))
		}
	} else if c.resources += countDocuments(data); c.resources > maxResourcesRead {
		return fail(fmt.Errorf("reads more than %d resources (YAML documents and List items)%s", maxResourcesRead, repeat))
	}
	if c.operationN*c.resources > maxOperationsTimesResources {
		return fail(fmt.Errorf("asks for %d patches, replacement targets, images, replicas and vars over %d resources: more than %d of one times the other%s",
			c.operationN, c.resources, maxOperationsTimesResources, repeat))
	}
	return data, nil
}

// countDocuments counts data's YAML documents, a List's items for each of its own
// (kustomize loads each as a resource): at least 1, as a file that is not YAML (an env
// file) is still read.
func countDocuments(data []byte) int {
	n := 0
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return max(n, 1)
		}
		n++
		if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
			m := doc.Content[0].Content
			for i := 0; i+1 < len(m); i += 2 {
				if m[i].Value == "items" && m[i+1].Kind == yaml.SequenceNode {
					n += len(m[i+1].Content) - 1
				}
			}
		}
	}
}

// WriteFile refuses: kustomize has nothing to write when it builds.
func (c *commitFS) WriteFile(name string, _ []byte) error {
	return fmt.Errorf("%s: the commit is read-only", name)
}
