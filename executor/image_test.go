package executor

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func TestPlainHTTPHosts(t *testing.T) {
	plain := plainHTTPHosts([]string{"registry.lan:5000"})
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "localhost": true,
		"registry.lan:5000": true, "registry.lan": false, "registry-1.docker.io": false, "10.0.0.1:5000": false,
	} {
		if got, _ := plain(host); got != want {
			t.Errorf("plain HTTP for %s = %v, want %v", host, got, want)
		}
	}
}

func TestDockerConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	basic := base64.StdEncoding.EncodeToString([]byte("alice:pa:ss"))
	os.WriteFile(path, []byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+basic+`"},
		"127.0.0.1:5000": {"username": "bob", "password": "pw"},
		"https://ghcr.io": {"identitytoken": "tok"},
		"broken.example": {"auth": "!!!"}
	}, "credsStore": "desktop"}`), 0o600)
	creds, err := readDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, user, secret string
		wantErr            bool
	}{
		{"registry-1.docker.io", "alice", "pa:ss", false},
		{"127.0.0.1:5000", "bob", "pw", false},
		{"ghcr.io", "", "tok", false},
		{"unknown.example", "", "", false},
		{"broken.example", "", "", true},
	}
	for _, tt := range tests {
		user, secret, err := creds.lookup(tt.host)
		if user != tt.user || secret != tt.secret || (err != nil) != tt.wantErr {
			t.Errorf("lookup(%s) = %q, %q, %v; want %q, %q, error %v", tt.host, user, secret, err, tt.user, tt.secret, tt.wantErr)
		}
	}
	if creds, err := readDockerConfig(""); err != nil || creds != nil {
		t.Errorf("no config path: %v, %v", creds, err)
	}
	if _, err := readDockerConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing config file was accepted")
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := readDockerConfig(path); err == nil {
		t.Error("a malformed config file was accepted")
	}
}
