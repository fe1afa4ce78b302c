package spec

import (
	"io/fs"
	"os"
	"path"
	"testing"
)

// fuzzOptions are small limits, so that every input is decoded with bounded memory and time.
var fuzzOptions = LoadOptions{MaxFileBytes: 64 << 10, MaxDocumentsPerFile: 50, MaxNodesPerDocument: 5000, MaxDepth: 40}

// FuzzDecode feeds arbitrary bytes to Decode, which must never panic, must return
// objects only without errors, and must locate every error in the file it was given.
func FuzzDecode(f *testing.F) {
	err := fs.WalkDir(os.DirFS("testdata"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isManifestName(p) {
			return err
		}
		data, err := os.ReadFile(path.Join("testdata", p))
		f.Add(data)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{minimalDeployment, aliasBomb(), serviceHead + "  ports: [{port: 80}]\n", "a: &a [*a]\n", "<<: *x\n", "\xff\xfe"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, diags := Decode("f.yaml", data, fuzzOptions)
		if objs != nil && diags.HasErrors() {
			t.Fatalf("objects returned with errors: %q", diagStrings(diags))
		}
		for _, d := range diags {
			if d.File != "f.yaml" || d.Line < 0 || d.Message == "" {
				t.Fatalf("malformed diagnostic %#v", d)
			}
		}
		for _, o := range objs {
			if o.Origin().File != "f.yaml" || o.Origin().Line < 1 {
				t.Fatalf("object without a source: %#v", o)
			}
			if d, ok := o.(*Deployment); ok {
				_ = InstanceHash(nil, d)
			}
		}
	})
}
