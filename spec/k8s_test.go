package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// TestShoalFieldsAreKubernetesFields walks every struct Shoal decodes beside the
// Kubernetes type it stands for: a field Shoal has and Kubernetes lacks at the
// same path would accept what kubectl rejects.
func TestShoalFieldsAreKubernetesFields(t *testing.T) {
	roots := map[reflect.Type]bool{}
	for _, o := range k8sObjects {
		obj, kt := (&decoder{}).newObject(mapping("apiVersion", o.apiVersion, "kind", o.kind))
		if obj == nil || kt != o.typ {
			t.Fatalf("newObject(%s %s) = %T, type %d; want the object of type %d", o.apiVersion, o.kind, obj, kt, o.typ)
		}
		roots[reflect.TypeOf(obj).Elem()] = true
		walkBeside(t, o.kind, reflect.TypeOf(obj).Elem(), o.typ)
	}
	for typ := range structInfos {
		if isObjectType(typ) && !roots[typ] {
			t.Errorf("%s is decoded but no Kubernetes kind stands for it in k8sObjects", typ)
		}
	}
}

func isObjectType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[Object]())
}

// walkBeside checks that Shoal's type st has only fields of the Kubernetes type kt, of the same shape.
func walkBeside(t *testing.T, path string, st reflect.Type, kt k8sTypeID) {
	t.Helper()
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	k := kt.get()
	switch st {
	case quantityType:
		want(t, path, k, k8sQuantity)
		return
	case intOrStringType:
		want(t, path, k, k8sIntOrString)
		return
	case bytesType:
		want(t, path, k, k8sBytes)
		return
	}
	switch st.Kind() {
	case reflect.Struct:
		if !want(t, path, k, k8sStruct) {
			return
		}
		info := structInfos[st]
		for name, i := range info.byName {
			ft, ok := kt.field(name)
			if !ok {
				t.Errorf("%s.%s: Shoal has the field, Kubernetes' %s does not", path, name, k.name)
				continue
			}
			walkBeside(t, path+"."+name, st.FieldByIndex(info.fields[i].index).Type, ft)
		}
	case reflect.Slice:
		if want(t, path, k, k8sList) {
			walkBeside(t, path+"[]", st.Elem(), k.elem)
		}
	case reflect.Map:
		if want(t, path, k, k8sMap) {
			walkBeside(t, path+"[*]", st.Elem(), k.elem)
		}
	case reflect.String:
		if k.class != k8sString && k.class != k8sTime {
			want(t, path, k, k8sString)
		}
	case reflect.Bool:
		want(t, path, k, k8sBool)
	case reflect.Int32, reflect.Int64:
		want(t, path, k, k8sInt)
	default:
		t.Errorf("%s: Shoal's %s has no Kubernetes counterpart", path, st)
	}
}

func want(t *testing.T, path string, k *k8sType, class k8sClass) bool {
	t.Helper()
	if k.class != class {
		t.Errorf("%s: Kubernetes' %s is %s, Shoal's is %s", path, k.name, classWants[k.class], classWants[class])
		return false
	}
	return true
}

// mapping builds a YAML mapping node of string keys and values.
func mapping(kv ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range kv {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	}
	return n
}

func TestKindTable(t *testing.T) {
	for _, tc := range []struct {
		apiVersion, kind string
		builtin, served  bool
	}{
		{"apps/v1", "Deployment", true, true},
		{"v1", "Service", true, true},
		{"extensions/v1beta1", "Deployment", true, false},
		{"networking.k8s.io/v1", "Ingress", true, true},
		{"batch/v1", "CronJob", true, true},
		{"policy/v1", "PodDisruptionBudget", true, true},
		{"monitoring.coreos.com/v1", "ServiceMonitor", false, false},
	} {
		if got := builtinGroup(tc.apiVersion); got != tc.builtin {
			t.Errorf("builtinGroup(%q) = %v", tc.apiVersion, got)
		}
		if got := servedKind(tc.apiVersion, tc.kind); got != tc.served {
			t.Errorf("servedKind(%q, %q) = %v", tc.apiVersion, tc.kind, got)
		}
	}
	if got := servedVersions("Deployment"); !slices.Equal(got, []string{"apps/v1"}) {
		t.Errorf("servedVersions(Deployment) = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	words := func(ws ...string) func(func(string) bool) { return slices.Values(ws) }
	for _, tc := range []struct{ word, want string }{
		{"replica", "replicas"},
		{"valuefrom", "valueFrom"},
		{"Deploymnet", "Deployment"},
		{"imagePullPolcy", "imagePullPolicy"},
		{"frobnicate", ""},
		{"x", ""},
	} {
		if got := suggest(tc.word, words("replicas", "valueFrom", "Deployment", "imagePullPolicy", "image")); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

// TestFieldPoliciesNameKubernetesFields keeps fieldPolicies and kindFeatures from
// naming a type, field or kind that does not exist, which would never match.
func TestFieldPoliciesNameKubernetesFields(t *testing.T) {
	types := map[string]k8sTypeID{}
	for i := range k8sTypes {
		types[k8sTypes[i].name] = k8sTypeID(i)
	}
	for key := range fieldPolicies {
		id, ok := types[key.typ]
		if !ok {
			t.Errorf("fieldPolicies: no Kubernetes type %s", key.typ)
			continue
		}
		if _, ok := id.field(key.field); !ok {
			t.Errorf("fieldPolicies: %s has no field %s", key.typ, key.field)
		}
	}
	for kind := range kindFeatures {
		if len(servedVersions(kind)) == 0 {
			t.Errorf("kindFeatures: no served kind %s", kind)
		}
	}
}

// TestUnknownFieldsCostLittle: the "did you mean" searches of a file stop after
// maxHints, so a file of misspelt names decodes as fast as one of right names.
func TestUnknownFieldsCostLittle(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimalDeployment)
	for i := range 2000 {
		fmt.Fprintf(&b, "  x%060d: 1\n", i)
	}
	_, diags := Decode("t.yaml", []byte(b.String()), LoadOptions{})
	hinted := 0
	for _, d := range diags {
		if strings.Contains(d.Message, "did you mean") {
			hinted++
		}
	}
	if len(diags) != 2000 || hinted > maxHints {
		t.Errorf("%d diagnostics, %d with a hint; want 2000, at most %d", len(diags), hinted, maxHints)
	}
}
