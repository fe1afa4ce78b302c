// Package imagebuild packages the example apps as OCI images without Docker: it compiles a
// static Go binary, wraps it in a one-layer image with go-containerregistry and pushes it
// to a registry, such as the in-process one Registry serves on 127.0.0.1 for tests and the
// demo. It only builds and serves images; deploying them is Shoal's job.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// HelloPackage is the import path of the example app.
const HelloPackage = "github.com/shoalhq/shoal/examples/hello"

// GRPCHealthPackage is the import path of the gRPC health server used to test gRPC probes.
const GRPCHealthPackage = "github.com/shoalhq/shoal/examples/grpchealth"

// HelloVersions are the tags BuildHello pushes; each image bakes its tag in as VERSION, so
// a rollout from one to the other shows in the app's answers.
var HelloVersions = []string{"v1", "v2"}

// CompileStatic builds pkg (an import path in this module, or a directory) as a static
// linux/amd64 binary at out. It runs the go command, so it must run inside the module.
func CompileStatic(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("imagebuild: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Config is what an image built by Image runs.
type Config struct {
	// Entrypoint defaults to the binary, placed at /<its file name>.
	Entrypoint []string
	Cmd        []string
	// Env is added to PATH.
	Env []string
}

// Image builds an OCI image for linux/amd64 holding only the binary at /<its file name>.
func Image(binary string, cfg Config) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	target := "/" + filepath.Base(binary)
	layerTar, err := tarOf(target, data, 0o755)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("imagebuild: layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	file, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	file = file.DeepCopy()
	file.OS, file.Architecture = "linux", "amd64"
	file.Config.Entrypoint = cfg.Entrypoint
	if len(file.Config.Entrypoint) == 0 {
		file.Config.Entrypoint = []string{target}
	}
	file.Config.Cmd = cfg.Cmd
	file.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cfg.Env...)
	file.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, file)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	return img, nil
}

// tarOf is a tar stream holding one file (and its parent directories).
func tarOf(target string, data []byte, mode int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var dirs []string
	for d := path.Dir(target); d != "/"; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: target[1:], Mode: mode, Size: int64(len(data))}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Push writes img to ref ("host:port/repo:tag"), over plain HTTP for loopback registries.
func Push(ctx context.Context, img v1.Image, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("imagebuild: push %s: %w", ref, err)
	}
	return nil
}

// BuildHello compiles the hello app into workDir and pushes one image per HelloVersions
// tag to registry ("host:port") as <registry>/hello:<tag>. It returns the references in
// the order of HelloVersions.
func BuildHello(ctx context.Context, workDir, registry string) ([]string, error) {
	binary := filepath.Join(workDir, "hello")
	if err := CompileStatic(ctx, HelloPackage, binary); err != nil {
		return nil, err
	}
	refs := make([]string, 0, len(HelloVersions))
	for _, v := range HelloVersions {
		img, err := Image(binary, Config{Env: []string{"VERSION=" + v}})
		if err != nil {
			return nil, err
		}
		ref := registry + "/hello:" + v
		if err := Push(ctx, img, ref); err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// BuildGRPCHealth compiles the gRPC health server into workDir and pushes it to registry
// ("host:port") as <registry>/grpchealth:v1, whose reference it returns.
func BuildGRPCHealth(ctx context.Context, workDir, registry string) (string, error) {
	binary := filepath.Join(workDir, "grpchealth")
	if err := CompileStatic(ctx, GRPCHealthPackage, binary); err != nil {
		return "", err
	}
	img, err := Image(binary, Config{})
	if err != nil {
		return "", err
	}
	ref := registry + "/grpchealth:v1"
	return ref, Push(ctx, img, ref)
}
