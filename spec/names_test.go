package spec

import (
	"strings"
	"testing"
)

func TestNameRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		rule  string
		check nameRule
		valid []string
		bad   []string
	}{
		{"dns1123Label", dns1123Label,
			[]string{"a", "web", "web-1", "1web", long(63)},
			[]string{"", "Web", "web_1", "-web", "web-", "web.app", long(64)}},
		{"dns1123Subdomain", dns1123Subdomain,
			[]string{"web", "web.example.com", "a-b.c-d", "0.1", long(63) + "." + long(63)},
			[]string{"", "Web", "web..com", ".web", "web.", "web_x", "web.-x", long(254)}},
		{"dns1035Label", dns1035Label,
			[]string{"web", "w-1", long(63)},
			[]string{"1web", "Web", "web-", long(64)}},
		{"ianaSvcName", ianaSvcName,
			[]string{"http", "grpc-web", "h2c", "metrics-9090"},
			[]string{"", "8080", "http--alt", "-http", "http-", "HTTP", "a-very-long-port-name"}},
		{"qualifiedName", qualifiedName,
			[]string{"app", "App_Name.v1", "app.kubernetes.io/name", "example.com/x", "kubernetes.io/hostname", long(63)},
			[]string{"", "/app", "-app", "app-", "Example.com/x", "a/b/c", "example.com/", long(64), "app name"}},
		{"labelValue", labelValue,
			[]string{"", "v1", "1.25.0", "Blue_Green", long(63)},
			[]string{"-v1", "v1-", "v 1", "a/b", long(64)}},
		{"envVarName", envVarName,
			[]string{"PORT", "_x", "my.var", "my-var", "a1"},
			[]string{"", "1PORT", "MY VAR", "x=y", "é"}},
		{"configMapKey", configMapKey,
			[]string{"config.yaml", "KEY_1", "a-b", ".hidden", long(253)},
			[]string{"", ".", "..", "..data", "a/b", "key with space", long(254)}},
		{"relativePath", relativePath,
			[]string{"a", "a/b.txt", "..foo", "a/..b"},
			[]string{"/etc/passwd", "../x", "a/../../x", ".."}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			for _, v := range tt.valid {
				if why := tt.check(v); why != "" {
					t.Errorf("%s(%q) refused: %s", tt.rule, v, why)
				}
			}
			for _, v := range tt.bad {
				if tt.check(v) == "" {
					t.Errorf("%s(%q) accepted, want refused", tt.rule, v)
				}
			}
		})
	}
}

func TestFieldPathString(t *testing.T) {
	tests := []struct {
		path *fieldPath
		want string
	}{
		{root, ""},
		{root.child("spec").child("replicas"), "spec.replicas"},
		{root.child("spec").child("containers").at(0).child("resources").child("limits").key("memory"),
			"spec.containers[0].resources.limits.memory"},
		{root.child("metadata").child("labels").key("app.kubernetes.io/name"), "metadata.labels[app.kubernetes.io/name]"},
		{root.child("data").key("config.yaml"), "data[config.yaml]"},
	}
	for _, tt := range tests {
		if got := tt.path.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
