package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestSourceValidate(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id")
	writeFile(t, keyFile, string(pem.EncodeToMemory(block)))
	signer, _ := ssh.NewSignerFromKey(priv)
	knownFile := filepath.Join(dir, "known_hosts")
	writeFile(t, knownFile, knownhosts.Line([]string{"git.example.com"}, signer.PublicKey())+"\n")
	srv := httptest.NewUnstartedServer(nil) // only for a certificate
	srv.StartTLS()
	srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(ca))
	const sha = "0123456789abcdef0123456789abcdef01234567"

	for _, tc := range []struct {
		name    string
		src     Source
		wantErr string // "" means valid
	}{
		{"local path", Source{URL: "/srv/manifests.git"}, ""},
		{"file URL with branch and path", Source{URL: "file:///srv/m.git", Branch: "main", Path: "clusters/prod/"}, ""},
		{"https with token and CA", Source{URL: "https://git.example.com/m.git", Auth: Auth{Token: "t", CABundle: ca}}, ""},
		{"https with CA file", Source{URL: "https://git.example.com/m.git", Auth: Auth{Username: "u", Password: "p", CAFile: caFile}}, ""},
		{"plain http anonymous", Source{URL: "http://git.internal/m.git"}, ""},
		{"ssh", Source{URL: "ssh://git@git.example.com/m.git", Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: knownFile}}, ""},
		{"scp-like ssh", Source{URL: "git@git.example.com:team/m.git", Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: knownFile}}, ""},
		{"tag", Source{URL: "/m", Tag: "v1.2.3"}, ""},
		{"pin", Source{URL: "/m", Commit: sha}, ""},
		{"pin on branch", Source{URL: "/m", Branch: "main", Commit: strings.ToUpper(sha)}, ""},

		{"empty URL", Source{}, "URL is empty"},
		{"relative path", Source{URL: "manifests"}, "must be absolute"},
		{"unsupported scheme", Source{URL: "ftp://h/m"}, `scheme "ftp" is not supported`},
		{"git protocol", Source{URL: "git://h/m"}, `scheme "git" is not supported`},
		{"credentials in URL", Source{URL: "https://u:hunter2@h/m"}, "put them in Auth"},
		{"branch and tag", Source{URL: "/m", Branch: "main", Tag: "v1"}, "exclude each other"},
		{"bad branch name", Source{URL: "/m", Branch: "a..b"}, "refs/heads/a..b"},
		{"short commit", Source{URL: "/m", Commit: "abc123"}, "40-hex-digit"},
		{"pin and tag", Source{URL: "/m", Tag: "v1", Commit: sha}, "pin the commit the tag names"},
		{"absolute path", Source{URL: "/m", Path: "/clusters"}, "relative"},
		{"escaping path", Source{URL: "/m", Path: "../x"}, "relative"},
		{"credentials for local", Source{URL: "/m", Auth: Auth{Token: "t"}}, "no credentials"},
		{"credentials over http", Source{URL: "http://h/m", Auth: Auth{Token: "t"}}, "plain http"},
		{"token and password", Source{URL: "https://h/m", Auth: Auth{Token: "t", Password: "p"}}, "exclude each other"},
		{"CA twice", Source{URL: "https://h/m", Auth: Auth{CABundle: ca, CAFile: caFile}}, "exclude each other"},
		{"CA not PEM", Source{URL: "https://h/m", Auth: Auth{CABundle: []byte("nope")}}, "no PEM certificate"},
		{"CA file missing", Source{URL: "https://h/m", Auth: Auth{CAFile: filepath.Join(dir, "nope.pem")}}, "CA file"},
		{"ssh settings for https", Source{URL: "https://h/m", Auth: Auth{SSHKeyFile: keyFile}}, "SSH settings"},
		{"https settings for ssh", Source{URL: "ssh://h/m", Auth: Auth{Token: "t", SSHKeyFile: keyFile, KnownHostsFile: knownFile}}, "HTTPS settings"},
		{"ssh without key", Source{URL: "ssh://h/m", Auth: Auth{KnownHostsFile: knownFile}}, "SSHKeyFile"},
		{"ssh without known_hosts", Source{URL: "ssh://h/m", Auth: Auth{SSHKeyFile: keyFile}}, "KnownHostsFile"},
		{"ssh key missing", Source{URL: "ssh://h/m", Auth: Auth{SSHKeyFile: filepath.Join(dir, "nope"), KnownHostsFile: knownFile}}, "SSH key"},
		{"ssh both host key modes", Source{URL: "ssh://h/m", Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: knownFile, InsecureIgnoreHostKey: true}}, "exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.src.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSource) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v; want ErrInvalidSource mentioning %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %v", err)
			}
		})
	}
}

// Every problem is reported at once, so one edit fixes the configuration.
func TestSourceValidateReportsAllProblems(t *testing.T) {
	err := Source{URL: "relative", Branch: "main", Tag: "v1", Commit: "short"}.Validate()
	for _, want := range []string{"must be absolute", "exclude each other", "40-hex-digit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %q", err, want)
		}
	}
}
