package main

import (
	"github.com/spf13/pflag"

	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
	"github.com/shoalhq/shoal/spec/kustomize"
)

// limitFlags bound what one revision may ask for. validate, plan and agent share them so
// that `shoal validate` refuses exactly what an agent with the same flags would; the flag
// names are the limit names spec's error messages give.
type limitFlags struct {
	fileBytes, revisionBytes, blobBytes        int64
	objects                                    int
	replicasPerDeployment, replicasPerRevision int64
}

func (l *limitFlags) register(fl *pflag.FlagSet) {
	d := spec.DefaultLoadOptions()
	fl.Int64Var(&l.fileBytes, "max-file-bytes", d.MaxFileBytes, "largest manifest file, in bytes")
	fl.Int64Var(&l.revisionBytes, "max-revision-bytes", d.MaxTotalBytes, "largest total of a revision's manifest files, in bytes")
	fl.Int64Var(&l.blobBytes, "max-blob-bytes", source.DefaultMaxBlobBytes, "largest file of any kind under the repository's --path, in bytes")
	fl.IntVar(&l.objects, "max-objects-per-revision", d.MaxObjects, "most objects in one revision")
	fl.Int64Var(&l.replicasPerDeployment, "max-replicas-per-deployment", d.MaxReplicasPerDeployment, "most replicas of one Deployment")
	fl.Int64Var(&l.replicasPerRevision, "max-replicas-per-revision", d.MaxReplicasPerRevision, "most replicas of all Deployments of one revision")
}

// repoOptions are the options of a source.Repo that loads with these limits.
func (l *limitFlags) repoOptions() []source.Option {
	return []source.Option{source.WithLoadOptions(l.options()), source.WithMaxBlobBytes(l.blobBytes)}
}

// options are the load options the flags ask for; spec.Load validates them. They render
// kustomizations, as every command that loads a revision does.
func (l *limitFlags) options() spec.LoadOptions {
	o := spec.DefaultLoadOptions()
	o.Kustomizer = kustomize.Renderer{}
	o.MaxFileBytes, o.MaxTotalBytes, o.MaxObjects = l.fileBytes, l.revisionBytes, l.objects
	o.MaxReplicasPerDeployment, o.MaxReplicasPerRevision = l.replicasPerDeployment, l.replicasPerRevision
	return o
}
