package spec

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestDiagnosticsQuoteNoSecret is the leak through error messages: a Secret (or an env
// var's value) written with a wrong type or an invalid character is rejected, and the
// rejection, which reaches /status, logs, validate and plan, must not carry the value.
func TestDiagnosticsQuoteNoSecret(t *testing.T) {
	const value = "8675309"
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
	tests := []struct {
		name, yaml string
	}{
		{"integer in stringData", secret + "stringData:\n  pin: 8675309\n"},
		{"float in stringData", secret + "stringData:\n  pin: 8675309.5\n"},
		{"integer in data", secret + "data:\n  pin: 8675309\n"},
		{"not base64 in data", secret + "data:\n  pin: \"8675309!\"\n"},
		{"integer in an annotation", secret + "  annotations:\n    note: 8675309\n"},
		{"invalid label value", secret + "  labels:\n    pin: \"8675309 \"\n"},
		{"unterminated quote", secret + "stringData:\n  pin: \"8675309\n"},
		{"integer in an env value", minimalDeployment + "        env:\n        - name: PIN\n          value: 8675309\n"},
		{"long integer in an env value", minimalDeployment + "        env:\n        - name: PIN\n          value: 86753098675309867530986753098675309\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"app/creds.yaml": {Data: []byte(tt.yaml)}}
			_, loaded := Load(fsys, LoadOptions{})
			if !loaded.HasErrors() {
				t.Fatal("Load accepted the manifest")
			}
			_, decoded := Decode("creds.yaml", []byte(tt.yaml), LoadOptions{})
			for _, text := range []string{loaded.Error(), decoded.Error()} {
				if strings.Contains(text, value) {
					t.Errorf("the value is in the diagnostic: %s", text)
				}
				if !strings.Contains(text, "creds.yaml:") {
					t.Errorf("the diagnostic does not say where: %s", text)
				}
			}
		})
	}
}
