package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"runtime"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// yamlBombs are files of the largest size allowed by default (4 MiB) made of the
// tiniest YAML nodes, in every shape that costs the parser the most per byte.
func yamlBombs() map[string][]byte {
	const size = 4 << 20
	fill := func(head, unit, tail string) []byte {
		n := (size - len(head) - len(tail)) / len(unit)
		return []byte(head + strings.Repeat(unit, n) + tail)
	}
	return map[string][]byte{
		"block list":           fill("", "- a\n", ""),
		"empty block items":    fill("", "-\n", ""),
		"flow list":            fill("[", "1,", "1]"),
		"nested flow lists":    fill("[", "[1,[1]],", "1]"),
		"flow mapping of keys": fill("{", "a,", "a}"),
		"explicit null keys":   fill("", "?\n", ""),
		"mapping of nulls":     fill("", "a:\n", ""),
		"long line of items":   fill("- [", "a, ", "a]\n"),
		"aliases":              fill("- &a a\n- [", "*a,", "*a]\n"),
		"tagged empty keys":    fill("{", "!t ,", "!t }"),
		"anchored empty items": fill("[", "&a ,", "&a ]"),
		"tiny documents":       fill("", "a\n---\n", ""),
		"list in a mapping":    fill("k: |\n  text\nl:\n", "- a\n", ""),
	}
}

// TestYAMLBombsRefusedCheaply is the attack of issue #8 on manifests: a 4 MiB file
// of tiny YAML nodes made the parser build a tree of over 600 MiB before the node
// limit could refuse it. Every such file must now be refused, with the limit
// named, after allocating no more than a small multiple of its size.
func TestYAMLBombsRefusedCheaply(t *testing.T) {
	for name, data := range yamlBombs() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			objs, diags := Decode("bomb.yaml", data, LoadOptions{})
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			if objs != nil || !diags.HasErrors() {
				t.Fatalf("bomb loaded: %q", diagStrings(diags))
			}
			msg := diags[0].Message
			if !strings.Contains(msg, "more than") {
				t.Errorf("refused for another reason than a limit: %q", msg)
			}
			if ratio := float64(allocated) / float64(len(data)); ratio > 2 {
				t.Errorf("decoding %d bytes allocated %d bytes (%.0f× its size), want at most 2×; refused with %q",
					len(data), allocated, ratio, msg)
			}
		})
	}
}

// yamlNodeCounts parses data with the YAML parser and returns the largest number
// of nodes of one of its documents, aliases not expanded, or ok false when data
// is not valid YAML.
func yamlNodeCounts(data []byte) (most int, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return most, true
		}
		if err != nil {
			return 0, false
		}
		n := 0
		var walk func(*yaml.Node)
		walk = func(x *yaml.Node) {
			n++
			for _, c := range x.Content {
				walk(c)
			}
		}
		for _, c := range doc.Content {
			walk(c)
		}
		most = max(most, n)
	}
}

// checkPreScanBound checks that scanShape's count of data's largest document is a
// lower bound of the parser's, so that every refusal is true, and is within a
// few times of it, so that what passes costs a bounded amount to parse.
func checkPreScanBound(t *testing.T, name string, data []byte) {
	t.Helper()
	real, ok := yamlNodeCounts(data)
	if !ok {
		return
	}
	counted := scanShape(data, LoadOptions{MaxNodesPerDocument: 1 << 30, MaxDepth: 1 << 30, MaxDocumentsPerFile: 1 << 30}).most
	if counted > real {
		t.Errorf("%s: pre-scan counted %d nodes in a document, the parser built only %d:\n%s", name, counted, real, data)
	}
	if real > 3*counted+3 {
		t.Errorf("%s: the parser built %d nodes in a document, more than 3× the pre-scan's %d + 3:\n%s", name, real, counted, data)
	}
}

// preScanSamples are YAML texts with every construct the pre-scan must follow.
var preScanSamples = []string{
	"a: b\nc: [1, 2, {d: e}]\n",
	"- a\n- b: c\n  d: e\n- - x\n  - y\n",
	"key: |\n  text: [1, 2]\n  - more\n\n  # not a comment\nnext: v\n",
	"key: >-\n    folded\n     more\n  \nnext: [a]\n",
	"- |2\n    x: y\n- z\n",
	"--- |\n  root scalar\n  - a\n---\n- b\n...\n---\n- c\n",
	"a: 'it''s: [x]'\nb: \"q \\\" [y]\\\n  z\"\nc: d\n",
	"a: plain\n  continued - x\nb: c\n",
	"[a\n b, c]\n",
	"? a\n: b\n? [c]\n: d\n?\n",
	"{a, b: , c: d}\n",
	"[a: b, c]\n",
	"{\"a\":1, \"b\":[2]}\n",
	"anchors: &x [1, 2]\nalias: *x\nmerge:\n  <<: *x\n",
	"!!map {a: !!str b}\n",
	"a: # comment\n  b\nc: #x\n  - d\n",
	"- a: b\n  c:\n  - d\n  - e\n- f\n",
	"a:\n  b:\n    c: |\n      x\n    d: [1]\n  e: 2\n",
	"a: |\n     \n  b\nc: d\n",
	"a: |\n\n\n  - x\n- y\n",
	"a: b\u2028c: [d]\u2028e: f\n",
	"%YAML 1.1\n---\na: b\n",
	"\ufeffa: b\n",
	"a:\n- b\n- c\nd: e\n",
	"[[], {}, [[]], {a: []}]\n",
	"- ? a\n  : b\n",
	"k: >\n text\n  more\nl: m\n",
	"{!!str , !!str }\n[&a , &b x, !t [y]]\n",
	"&a\n- &b !t x\n- !t\n- *a\n",
	"&a key: &b value\n!t k2: !t\n",
}

func TestPreScanCountsALowerBound(t *testing.T) {
	for _, s := range preScanSamples {
		checkPreScanBound(t, "sample", []byte(s))
	}
	for name, data := range yamlBombs() {
		if len(data) > 1<<16 {
			data = data[:1<<16]
			if i := bytes.LastIndexByte(data, '\n'); i > 0 && name != "flow list" {
				data = data[:i+1]
			}
		}
		checkPreScanBound(t, name, data)
	}
	err := fs.WalkDir(os.DirFS("testdata"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isManifestName(p) {
			return err
		}
		data, err := os.ReadFile(path.Join("testdata", p))
		checkPreScanBound(t, p, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzPreScan checks the pre-scan's count against the parser's on any valid YAML.
func FuzzPreScan(f *testing.F) {
	for _, s := range preScanSamples {
		f.Add([]byte(s))
	}
	f.Add([]byte(minimalDeployment))
	f.Fuzz(func(t *testing.T, data []byte) {
		if msg, _ := checkText(data); len(data) > 4096 || msg != "" {
			return // Decode refuses what is not UTF-8 text before the pre-scan
		}
		// go-yaml's reading of a byte order mark after the first is irregular: after
		// "\ufeff\ufeff\n" it ends the stream, dropping what follows, so its count is
		// no measure there (the pre-scan's count is then above the parser's, which can
		// only refuse sooner).
		if bytes.Contains(data[min(3, len(data)):], []byte("\ufeff")) {
			return
		}
		checkPreScanBound(t, "input", data)
	})
}

// TestLargeRealisticFileLoads checks that the pre-scan refuses nothing real: a
// file of Deployments as large as the default limit allows loads.
func TestLargeRealisticFileLoads(t *testing.T) {
	var file []byte
	n := 0
	for ; len(file) < 4<<20-2<<10; n++ {
		file = fmt.Appendf(file, "---\n"+benchDeployment, n)
	}
	objs, diags := Decode("big.yaml", file, LoadOptions{})
	if diags.HasErrors() || len(objs) != n {
		t.Fatalf("%d objects of %d, diagnostics %q", len(objs), n, diagStrings(diags)[:min(len(diags), 5)])
	}
	if _, diag := checkFile("big.yaml", file, DefaultLoadOptions()); diag != nil {
		t.Fatal(diag)
	}
}

// BenchmarkScanShape measures the pre-scan of a 4 MiB file of Deployments.
func BenchmarkScanShape(b *testing.B) {
	var file []byte
	for n := 0; len(file) < 4<<20-2<<10; n++ {
		file = fmt.Appendf(file, "---\n"+benchDeployment, n)
	}
	opts := DefaultLoadOptions()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if r := scanShape(file, opts); r.failMsg != "" {
			b.Fatal(r.failMsg)
		}
	}
}

// TestCheckFileWeight checks that a file weighs in the decoding budget by what
// its tree costs: about 32 bytes per node the pre-scan counts, or its size when
// that is more, so that dense files are parsed one at a time.
func TestCheckFileWeight(t *testing.T) {
	for _, tt := range []struct {
		name string
		data string
		want int64
	}{
		{"a Deployment of 66 counted nodes", strings.ReplaceAll(benchDeployment, "%[1]d", "1"), 66 * nodeWeight},
		{"a list of 50,001 items", "[" + strings.Repeat("1,", 50_000) + "1]", 50_002 * nodeWeight},
		{"a block scalar", "a: |\n" + strings.Repeat("  text text text\n", 1000), 17_005},
	} {
		if got, diag := checkFile("f.yaml", []byte(tt.data), DefaultLoadOptions()); diag != nil || got != tt.want {
			t.Errorf("%s: weight %d, %v; want %d", tt.name, got, diag, tt.want)
		}
	}
}

// TestPreScanRandomYAML checks the pre-scan's bounds (checkPreScanBound) on random
// strings of YAML's syntax, which finds what the fuzzer takes long to.
func TestPreScanRandomYAML(t *testing.T) {
	pieces := []string{"-", " ", "\n", ":", "?", "[", "]", "{", "}", ",", "a", "'", "\"", "|", ">", "#",
		"&x", "*x", "!t", "---", "...", "\t", "\\", "  ", "\r", "\u2028", "\u0085", "é", "2", "+", "%",
		"- ", ": ", "? ", "\n  ", "\n    ", "\n- ", "|-\n", "|2\n", ">+\n", "\n---\n", " #c\n", "&a ",
		"*a ", "!!str ", ", ", `"q"`, "'q'"}
	r := rand.New(rand.NewPCG(1, 2))
	iterations := 100_000
	if testing.Short() {
		iterations = 10_000
	}
	for range iterations {
		var data []byte
		for range r.IntN(40) {
			data = append(data, pieces[r.IntN(len(pieces))]...)
		}
		checkPreScanBound(t, "random", data)
		if t.Failed() {
			return
		}
	}
}
