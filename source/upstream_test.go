package source

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/spec"
)

// newUpstream is a real remote: a bare repository and a working clone that commits and
// pushes with the git CLI. Its commits carry a fixed date, so hashes repeat across runs.
func newUpstream(t testing.TB) *testsupport.Repo {
	t.Helper()
	up := testsupport.NewRemote(t)
	up.Date = "2024-05-01T12:00:00Z"
	return up
}

// configMap is a one-key ConfigMap manifest: the smallest valid object.
func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// brokenManifest fails to decode.
const brokenManifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n"

// openRepo opens src under stateDir and closes it when the test ends.
func openRepo(t testing.TB, src Source, stateDir string, opts ...Option) *Repo {
	t.Helper()
	r, err := Open(context.Background(), src, stateDir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// configValue returns data.value of the named ConfigMap in the default namespace, or
// "<missing>".
func configValue(d *spec.Desired, name string) string {
	cm := d.Objects.ConfigMap(spec.DefaultNamespace, name)
	if cm == nil {
		return "<missing>"
	}
	return cm.Data["value"]
}

// logBuffer collects log lines for assertions.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}
