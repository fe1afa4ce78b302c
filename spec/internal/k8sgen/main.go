// Command k8sgen writes spec/k8s_gen.go, the tables through which package spec
// knows Kubernetes without importing it: every kind of the built-in API groups
// (from the k8s.io/api types registered in a runtime.Scheme) and, for the kinds
// Shoal loads, every field of their types by json name. The decoder walks these
// tables beside Shoal's own structs so that a field Kubernetes does not have is an
// error, and one it has but Shoal does not honour is a warning.
//
// Run it with `go generate ./spec` after changing the k8s.io/api version or the
// kinds Shoal loads; TestGeneratedTablesAreCurrent fails while the file is stale.
package main

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"reflect"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1alpha1 "k8s.io/api/admissionregistration/v1alpha1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	apiserverinternalv1alpha1 "k8s.io/api/apiserverinternal/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	appsv1beta2 "k8s.io/api/apps/v1beta2"
	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1alpha1 "k8s.io/api/authentication/v1alpha1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1 "k8s.io/api/authorization/v1"
	authorizationv1beta1 "k8s.io/api/authorization/v1beta1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1alpha1 "k8s.io/api/certificates/v1alpha1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	coordinationv1 "k8s.io/api/coordination/v1"
	coordinationv1alpha2 "k8s.io/api/coordination/v1alpha2"
	coordinationv1beta1 "k8s.io/api/coordination/v1beta1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	eventsv1 "k8s.io/api/events/v1"
	eventsv1beta1 "k8s.io/api/events/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	flowcontrolv1beta1 "k8s.io/api/flowcontrol/v1beta1"
	flowcontrolv1beta2 "k8s.io/api/flowcontrol/v1beta2"
	flowcontrolv1beta3 "k8s.io/api/flowcontrol/v1beta3"
	lifecyclev1alpha1 "k8s.io/api/lifecycle/v1alpha1"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	nodev1 "k8s.io/api/node/v1"
	nodev1alpha1 "k8s.io/api/node/v1alpha1"
	nodev1beta1 "k8s.io/api/node/v1beta1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	rbacv1 "k8s.io/api/rbac/v1"
	rbacv1alpha1 "k8s.io/api/rbac/v1alpha1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	resourcev1 "k8s.io/api/resource/v1"
	resourcev1alpha3 "k8s.io/api/resource/v1alpha3"
	resourcev1beta1 "k8s.io/api/resource/v1beta1"
	resourcev1beta2 "k8s.io/api/resource/v1beta2"
	schedulingv1 "k8s.io/api/scheduling/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	storagev1 "k8s.io/api/storage/v1"
	storagev1alpha1 "k8s.io/api/storage/v1alpha1"
	storagev1beta1 "k8s.io/api/storage/v1beta1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	storagemigrationv1beta1 "k8s.io/api/storagemigration/v1beta1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// release is the Kubernetes minor release of k8s.io/api v0.37: a kind whose
// APILifecycleRemoved is this release or earlier is no longer served.
const release = 37

// addToScheme registers the API groups an API server of this release builds in,
// as client-go's kubernetes/scheme does. Left out are the packages of k8s.io/api
// that are not served resources: admission and imagepolicy (webhook payloads) and
// apidiscovery (discovery documents). TestEveryAPIGroupIsRegistered keeps the list whole.
var addToScheme = []func(*runtime.Scheme) error{
	admissionregistrationv1.AddToScheme, admissionregistrationv1alpha1.AddToScheme, admissionregistrationv1beta1.AddToScheme,
	apiserverinternalv1alpha1.AddToScheme,
	appsv1.AddToScheme, appsv1beta1.AddToScheme, appsv1beta2.AddToScheme,
	authenticationv1.AddToScheme, authenticationv1alpha1.AddToScheme, authenticationv1beta1.AddToScheme,
	authorizationv1.AddToScheme, authorizationv1beta1.AddToScheme,
	autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
	batchv1.AddToScheme, batchv1beta1.AddToScheme,
	certificatesv1.AddToScheme, certificatesv1alpha1.AddToScheme, certificatesv1beta1.AddToScheme,
	coordinationv1.AddToScheme, coordinationv1alpha2.AddToScheme, coordinationv1beta1.AddToScheme,
	corev1.AddToScheme,
	discoveryv1.AddToScheme, discoveryv1beta1.AddToScheme,
	eventsv1.AddToScheme, eventsv1beta1.AddToScheme,
	extensionsv1beta1.AddToScheme,
	flowcontrolv1.AddToScheme, flowcontrolv1beta1.AddToScheme, flowcontrolv1beta2.AddToScheme, flowcontrolv1beta3.AddToScheme,
	lifecyclev1alpha1.AddToScheme,
	networkingv1.AddToScheme, networkingv1beta1.AddToScheme,
	nodev1.AddToScheme, nodev1alpha1.AddToScheme, nodev1beta1.AddToScheme,
	policyv1.AddToScheme, policyv1beta1.AddToScheme,
	rbacv1.AddToScheme, rbacv1alpha1.AddToScheme, rbacv1beta1.AddToScheme,
	resourcev1.AddToScheme, resourcev1alpha3.AddToScheme, resourcev1beta1.AddToScheme, resourcev1beta2.AddToScheme,
	schedulingv1.AddToScheme, schedulingv1alpha3.AddToScheme, schedulingv1beta1.AddToScheme,
	storagev1.AddToScheme, storagev1alpha1.AddToScheme, storagev1beta1.AddToScheme,
	storagemigrationv1.AddToScheme, storagemigrationv1beta1.AddToScheme,
}

// loaded are the kinds Shoal decodes (spec's supportedKinds): the roots of the
// field tables. spec's TestEveryLoadedKindHasAKubernetesType keeps the two lists equal.
var loaded = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "Service"},
}

// leaves are the struct types that JSON carries as one value, with the class
// the table gives them.
var leaves = map[reflect.Type]string{
	reflect.TypeFor[metav1.Time]():          "k8sTime",
	reflect.TypeFor[metav1.MicroTime]():     "k8sTime",
	reflect.TypeFor[resource.Quantity]():    "k8sQuantity",
	reflect.TypeFor[intstr.IntOrString]():   "k8sIntOrString",
	reflect.TypeFor[runtime.RawExtension](): "k8sAny",
	reflect.TypeFor[metav1.FieldsV1]():      "k8sAny",
}

func main() {
	out := flag.String("o", "k8s_gen.go", "file to write")
	flag.Parse()
	src, err := Generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// Generate returns the source of spec/k8s_gen.go.
func Generate() ([]byte, error) {
	scheme := runtime.NewScheme()
	for _, add := range addToScheme {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by spec/internal/k8sgen from k8s.io/api; DO NOT EDIT.\n\npackage spec\n\n")
	if err := writeKinds(&b, scheme); err != nil {
		return nil, err
	}
	if err := writeTypes(&b, scheme); err != nil {
		return nil, err
	}
	return format.Source(b.Bytes())
}

// writeKinds writes k8sKinds: every kind of every built-in group and version.
func writeKinds(b *bytes.Buffer, scheme *runtime.Scheme) error {
	metaPkg := reflect.TypeFor[metav1.ObjectMeta]().PkgPath()
	type kind struct {
		apiVersion, kind string
		removed          bool
	}
	var kinds []kind
	for gvk, t := range scheme.AllKnownTypes() {
		// metav1's own types (WatchEvent, the *Options) are registered in every
		// group but are not objects a manifest declares.
		if gvk.Version == runtime.APIVersionInternal || t.PkgPath() == metaPkg {
			continue
		}
		removed := false
		if r, ok := reflect.New(t).Interface().(interface{ APILifecycleRemoved() (int, int) }); ok {
			major, minor := r.APILifecycleRemoved()
			removed = major < 1 || major == 1 && minor <= release
		}
		kinds = append(kinds, kind{gvk.GroupVersion().String(), gvk.Kind, removed})
	}
	slices.SortFunc(kinds, func(a, c kind) int {
		return cmp.Or(cmp.Compare(a.apiVersion, c.apiVersion), cmp.Compare(a.kind, c.kind))
	})
	b.WriteString("// k8sKinds is every kind of the built-in API groups, sorted by apiVersion and\n" +
		"// kind; removed marks a kind this version no longer serves.\n")
	fmt.Fprintf(b, "var k8sKinds = [...]k8sKind{\n")
	for _, k := range kinds {
		fmt.Fprintf(b, "\t{%q, %q, %v},\n", k.apiVersion, k.kind, k.removed)
	}
	b.WriteString("}\n\n")
	return nil
}

// typeTable numbers the types reachable from the loaded kinds' fields.
type typeTable struct {
	ids   map[string]int
	lines []string
}

// writeTypes writes k8sTypes, every type reachable from the loaded kinds, and
// k8sObjects, the root type of each loaded kind.
func writeTypes(b *bytes.Buffer, scheme *runtime.Scheme) error {
	tt := &typeTable{ids: map[string]int{}}
	type root struct {
		apiVersion, kind string
		id               int
	}
	var roots []root
	for _, gvk := range loaded {
		t, ok := scheme.AllKnownTypes()[gvk]
		if !ok {
			return fmt.Errorf("k8sgen: %s is not in the scheme", gvk)
		}
		id, err := tt.add(t)
		if err != nil {
			return err
		}
		roots = append(roots, root{gvk.GroupVersion().String(), gvk.Kind, id})
	}
	b.WriteString("// k8sTypes is every type reachable from the kinds Shoal loads, by k8sTypeID.\n")
	b.WriteString("var k8sTypes = [...]k8sType{\n")
	for i, l := range tt.lines {
		fmt.Fprintf(b, "\t%d: %s,\n", i, l)
	}
	b.WriteString("}\n\n")
	b.WriteString("// k8sObjects is the type of each kind Shoal loads.\n")
	b.WriteString("var k8sObjects = [...]k8sObject{\n")
	for _, r := range roots {
		fmt.Fprintf(b, "\t{%q, %q, %d},\n", r.apiVersion, r.kind, r.id)
	}
	b.WriteString("}\n")
	return nil
}

// name is how the table names t: "core/v1.PodSpec", "[]string", "map[string]string".
func name(t reflect.Type) string {
	if class, ok := leafClass(t); ok && t.Kind() != reflect.Struct {
		return strings.TrimPrefix(class, "k8s")
	}
	switch t.Kind() {
	case reflect.Pointer:
		return name(t.Elem())
	case reflect.Slice:
		return "[]" + name(t.Elem())
	case reflect.Map:
		return "map[string]" + name(t.Elem())
	}
	pkg := t.PkgPath()
	pkg = strings.TrimPrefix(pkg, "k8s.io/api/")
	pkg = strings.TrimPrefix(pkg, "k8s.io/apimachinery/pkg/apis/")
	pkg = strings.TrimPrefix(pkg, "k8s.io/apimachinery/pkg/")
	return pkg + "." + t.Name()
}

// leafClass returns the table class of a type that has no fields of its own.
func leafClass(t reflect.Type) (string, bool) {
	if c, ok := leaves[t]; ok {
		return c, true
	}
	switch t.Kind() {
	case reflect.String:
		return "k8sString", true
	case reflect.Bool:
		return "k8sBool", true
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Int16:
		return "k8sInt", true
	case reflect.Float32, reflect.Float64:
		return "k8sFloat", true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "k8sBytes", true // encoding/json's base64
		}
	case reflect.Interface:
		return "k8sAny", true
	}
	return "", false
}

// add numbers t (and what it reaches) and returns its id.
func (tt *typeTable) add(t reflect.Type) (int, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := name(t)
	if id, ok := tt.ids[n]; ok {
		return id, nil
	}
	id := len(tt.lines)
	tt.ids[n] = id
	tt.lines = append(tt.lines, "")
	var line string
	if class, ok := leafClass(t); ok {
		line = fmt.Sprintf("{name: %q, class: %s}", n, class)
	} else {
		switch t.Kind() {
		case reflect.Slice, reflect.Map:
			if t.Kind() == reflect.Map && t.Key().Kind() != reflect.String {
				return 0, fmt.Errorf("k8sgen: %s has keys that are not strings", n)
			}
			elem, err := tt.add(t.Elem())
			if err != nil {
				return 0, err
			}
			class := map[reflect.Kind]string{reflect.Slice: "k8sList", reflect.Map: "k8sMap"}[t.Kind()]
			line = fmt.Sprintf("{name: %q, class: %s, elem: %d}", n, class, elem)
		case reflect.Struct:
			if _, custom := reflect.New(t).Interface().(interface{ UnmarshalJSON([]byte) error }); custom {
				return 0, fmt.Errorf("k8sgen: %s decodes itself from JSON: add it to leaves", n)
			}
			type field struct {
				name string
				id   int
			}
			var fields []field
			var walk func(t reflect.Type) error
			walk = func(t reflect.Type) error {
				for i := range t.NumField() {
					f := t.Field(i)
					fname, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
					if fname == "-" || !f.IsExported() {
						continue
					}
					if fname == "" && (f.Anonymous || strings.Contains(opts, "inline")) && f.Type.Kind() == reflect.Struct {
						if err := walk(f.Type); err != nil {
							return err
						}
						continue
					}
					if fname == "" {
						fname = f.Name
					}
					fid, err := tt.add(f.Type)
					if err != nil {
						return err
					}
					fields = append(fields, field{fname, fid})
				}
				return nil
			}
			if err := walk(t); err != nil {
				return 0, err
			}
			slices.SortFunc(fields, func(a, c field) int { return cmp.Compare(a.name, c.name) })
			var fb strings.Builder
			for _, f := range fields {
				fmt.Fprintf(&fb, "{%q, %d}, ", f.name, f.id)
			}
			line = fmt.Sprintf("{name: %q, class: k8sStruct, fields: []k8sField{%s}}", n, strings.TrimSuffix(fb.String(), ", "))
		default:
			return 0, fmt.Errorf("k8sgen: %s: no table class for kind %s", n, t.Kind())
		}
	}
	tt.lines[id] = line
	return id, nil
}
