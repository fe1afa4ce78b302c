package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"
)

func TestBuildHelloPushesRunnableImages(t *testing.T) {
	defer goleak.VerifyNone(t)
	// The pushes' keep-alive connections would otherwise outlive the test.
	defer remote.DefaultTransport.(*http.Transport).CloseIdleConnections()
	reg, stop := startTestRegistry(t)
	defer stop() // before goleak looks
	refs, err := BuildHello(context.Background(), t.TempDir(), reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{reg.Addr + "/hello:v1", reg.Addr + "/hello:v2"}; !slices.Equal(refs, want) {
		t.Fatalf("refs = %v, want %v", refs, want)
	}
	for i, ref := range refs {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r)
		if err != nil {
			t.Fatalf("pull %s back: %v", ref, err)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s, want OCI", ref, mt)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != "amd64" {
			t.Errorf("%s: platform %s/%s", ref, cfg.OS, cfg.Architecture)
		}
		if !slices.Equal(cfg.Config.Entrypoint, []string{"/hello"}) {
			t.Errorf("%s: entrypoint %v", ref, cfg.Config.Entrypoint)
		}
		if want := "VERSION=" + HelloVersions[i]; !slices.Contains(cfg.Config.Env, want) {
			t.Errorf("%s: env %v lacks %s", ref, cfg.Config.Env, want)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: layers %d, %v", ref, len(layers), err)
		}
		hdr := fileInLayer(t, layers[0].Uncompressed)
		if hdr.Name != "hello" || hdr.Mode&0o111 == 0 || hdr.Size < 1<<20 {
			t.Errorf("%s: layer holds %s mode %o size %d, want an executable /hello binary", ref, hdr.Name, hdr.Mode, hdr.Size)
		}
	}
}

func TestRegistryClosesCleanly(t *testing.T) {
	defer goleak.VerifyNone(t)
	reg, err := StartRegistry("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := StartRegistry("256.0.0.1:0"); err == nil {
		t.Error("a registry on a bad address started")
	}
}

// TestRegistryListenAlso pushes through one address and pulls through the other: both
// serve the same images, and a tag nobody pushed is not found on either.
func TestRegistryListenAlso(t *testing.T) {
	defer goleak.VerifyNone(t)
	defer remote.DefaultTransport.(*http.Transport).CloseIdleConnections()
	reg, stop := startTestRegistry(t)
	defer stop() // before goleak looks
	also, err := reg.ListenAlso("127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(context.Background(), img, reg.Addr+"/app:v1"); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	head := func(ref string) (*v1.Descriptor, error) {
		r, err := name.ParseReference(ref, name.Insecure) // plain HTTP to 127.0.0.2 too
		if err != nil {
			t.Fatal(err)
		}
		return remote.Head(r)
	}
	for _, host := range []string{reg.Addr, also} {
		if got, err := head(host + "/app:v1"); err != nil || got.Digest != want {
			t.Errorf("%s/app:v1: %v, %v; want %v", host, got, err, want)
		}
		var terr *transport.Error
		if _, err := head(host + "/app:v9"); !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
			t.Errorf("%s/app:v9: %v, want 404 not found", host, err)
		}
	}
	if _, err := reg.ListenAlso(reg.Addr); err == nil {
		t.Error("a second listener on a busy address started")
	}
}

func fileInLayer(t *testing.T, open func() (io.ReadCloser, error)) *tar.Header {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("layer holds no regular file")
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return hdr
		}
	}
}

// startTestRegistry serves a registry on loopback; stop closes it.
func startTestRegistry(t *testing.T) (reg *Registry, stop func()) {
	t.Helper()
	reg, err := StartRegistry("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return reg, func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	}
}
