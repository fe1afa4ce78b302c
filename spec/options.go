package spec

import (
	"errors"
	"fmt"
	"io/fs"
)

// LoadOptions bounds what Load and Decode accept, so that a hostile or broken
// commit costs a bounded amount of memory and time and fails with a clear error.
// A zero field takes its value from DefaultLoadOptions.
//
// A file is checked against the limits on documents, nodes and depth by a linear
// pre-scan before the YAML parser builds anything, so a file of tiny nodes (a flat
// list of 2 million items fits in 4 MiB) is refused at the cost of reading it.
// What passes costs the parser at most the tree of one document of about three
// times MaxNodesPerDocument (about 140 MiB by default, 30 times the largest file),
// and Load decodes at most MaxFileBytes of manifests at once (a file weighing 32
// bytes per YAML node, or its size if that is more), whatever the number of CPUs,
// so that is also about what a load costs beyond the objects it returns.
type LoadOptions struct {
	// MaxFileBytes is the size of the largest manifest file read, in bytes.
	// Larger files are an error, found before reading them.
	MaxFileBytes int64
	// MaxTotalBytes bounds the sum of the sizes of a revision's manifest files, in bytes.
	MaxTotalBytes int64
	// MaxFiles bounds the number of manifest files (*.yaml, *.yml, *.json) of a revision.
	MaxFiles int
	// MaxDocumentsPerFile bounds the YAML documents (separated by ---) in one file,
	// counting empty ones.
	MaxDocumentsPerFile int
	// MaxNodesPerDocument bounds the YAML nodes of one document, counting every use
	// of an alias as a full copy of what it names: this refuses alias bombs
	// ("billion laughs") before anything expands them.
	MaxNodesPerDocument int
	// MaxDepth bounds how deeply mappings and lists nest in one document.
	MaxDepth int
	// MaxObjects bounds the objects Shoal loads (of the kinds it honours) in one revision.
	MaxObjects int
	// MaxReplicasPerDeployment bounds one Deployment's spec.replicas.
	MaxReplicasPerDeployment int64
	// MaxReplicasPerRevision bounds the sum of spec.replicas over a revision's Deployments.
	MaxReplicasPerRevision int64
	// Kustomizer renders the directories that hold a kustomization file. When nil,
	// they are skipped with a warning: nothing under them loads.
	Kustomizer Kustomizer
	// Repository, when set, is the whole commit, and Path (slash-separated) the
	// directory of it that Load reads manifests from. Kustomizations are then rendered
	// from Repository, so that an overlay under Path may use a base elsewhere in the
	// commit (as Flux renders a path of a repository); nothing else is read outside Path.
	Repository fs.FS
	Path       string
}

// DefaultLoadOptions returns limits far above any real repository: 4 MiB per
// file, 64 MiB, 20,000 files and 10,000 objects per revision, 10,000 documents
// per file, 100,000 nodes per document, nesting 100 levels deep, and 10,000
// replicas per Deployment and 100,000 per revision (Kubernetes' documented
// scalability limit is 150,000 pods per cluster, and 110 per node).
func DefaultLoadOptions() LoadOptions {
	return LoadOptions{
		MaxFileBytes:             4 << 20,
		MaxTotalBytes:            64 << 20,
		MaxFiles:                 20_000,
		MaxDocumentsPerFile:      10_000,
		MaxNodesPerDocument:      100_000,
		MaxDepth:                 100,
		MaxObjects:               10_000,
		MaxReplicasPerDeployment: 10_000,
		MaxReplicasPerRevision:   100_000,
	}
}

// ErrInvalidLoadOptions is returned by LoadOptions.Validate.
var ErrInvalidLoadOptions = errors.New("spec: invalid load options")

// Validate reports a limit that is negative or that a single file could not satisfy.
// Zero fields are valid: they mean the default.
func (o LoadOptions) Validate() error {
	o = o.withDefaults()
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"MaxFileBytes", o.MaxFileBytes},
		{"MaxTotalBytes", o.MaxTotalBytes},
		{"MaxFiles", int64(o.MaxFiles)},
		{"MaxDocumentsPerFile", int64(o.MaxDocumentsPerFile)},
		{"MaxNodesPerDocument", int64(o.MaxNodesPerDocument)},
		{"MaxDepth", int64(o.MaxDepth)},
		{"MaxObjects", int64(o.MaxObjects)},
		{"MaxReplicasPerDeployment", o.MaxReplicasPerDeployment},
		{"MaxReplicasPerRevision", o.MaxReplicasPerRevision},
	} {
		if f.value < 0 {
			return fmt.Errorf("%w: %s is %d, must not be negative", ErrInvalidLoadOptions, f.name, f.value)
		}
	}
	if o.MaxFileBytes > o.MaxTotalBytes {
		return fmt.Errorf("%w: MaxFileBytes %d exceeds MaxTotalBytes %d", ErrInvalidLoadOptions, o.MaxFileBytes, o.MaxTotalBytes)
	}
	return nil
}

// withDefaults fills every zero field from DefaultLoadOptions.
func (o LoadOptions) withDefaults() LoadOptions {
	d := DefaultLoadOptions()
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = d.MaxFileBytes
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = d.MaxTotalBytes
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = d.MaxFiles
	}
	if o.MaxDocumentsPerFile == 0 {
		o.MaxDocumentsPerFile = d.MaxDocumentsPerFile
	}
	if o.MaxNodesPerDocument == 0 {
		o.MaxNodesPerDocument = d.MaxNodesPerDocument
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = d.MaxDepth
	}
	if o.MaxObjects == 0 {
		o.MaxObjects = d.MaxObjects
	}
	if o.MaxReplicasPerDeployment == 0 {
		o.MaxReplicasPerDeployment = d.MaxReplicasPerDeployment
	}
	if o.MaxReplicasPerRevision == 0 {
		o.MaxReplicasPerRevision = d.MaxReplicasPerRevision
	}
	return o
}
