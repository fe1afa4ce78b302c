package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// TestGeneratedTablesAreCurrent fails when spec/k8s_gen.go is not what the
// generator writes from the k8s.io/api in go.mod: run `go generate ./spec`.
func TestGeneratedTablesAreCurrent(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../k8s_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spec/k8s_gen.go is stale: run `go generate ./spec`")
	}
}

// TestEveryAPIGroupIsRegistered checks addToScheme against the API packages of
// k8s.io/api, so that a group a new release adds is not taken for a custom resource.
func TestEveryAPIGroupIsRegistered(t *testing.T) {
	if testing.Short() {
		t.Skip("lists the packages of k8s.io/api with the go command")
	}
	out, err := exec.Command("go", "list", "k8s.io/api/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range addToScheme {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	registered := map[string]bool{}
	for _, typ := range scheme.AllKnownTypes() {
		if strings.HasPrefix(typ.PkgPath(), "k8s.io/api/") {
			registered[typ.PkgPath()] = true
		}
	}
	notServed := map[string]bool{"admission": true, "imagepolicy": true, "apidiscovery": true}
	apiPackage := regexp.MustCompile(`^k8s\.io/api/([a-z0-9]+)/v[0-9]+((alpha|beta)[0-9]+)?$`)
	for _, pkg := range strings.Fields(string(out)) {
		m := apiPackage.FindStringSubmatch(pkg)
		if m == nil || notServed[m[1]] {
			continue
		}
		if !registered[pkg] {
			t.Errorf("%s is an API group version that addToScheme leaves out", pkg)
		}
	}
}
