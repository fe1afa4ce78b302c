package identity

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T, now time.Time) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if err := InitCA(dir, "test CA", DefaultCAValidity, now); err != nil {
		t.Fatal(err)
	}
	return dir
}

func issue(t *testing.T, caDir, node string, validity time.Duration, now time.Time) (*Identity, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), node)
	serial, err := Issue(caDir, node, []net.IP{net.ParseIP("10.0.0.1")}, validity, out, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Load(filepath.Join(out, NodeCertFile), filepath.Join(out, NodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return id, serial
}

func TestIssueAndVerify(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	id, _ := issue(t, ca, "n1", DefaultNodeValidity, now)
	if id.Name != "n1" || id.Cert.DNSNames[0] != "n1" || !id.Cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || len(id.Cert.ExtKeyUsage) != 2 {
		t.Fatalf("certificate: CN %q, DNS %v, IP %v, EKU %v", id.Name, id.Cert.DNSNames, id.Cert.IPAddresses, id.Cert.ExtKeyUsage)
	}
	v, err := NewVerifier(filepath.Join(ca, CACertFile), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(id.DER, "n1", now); err != nil {
		t.Fatalf("own certificate: %v", err)
	}
	if info, _ := os.Stat(filepath.Join(ca, CAKeyFile)); info.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode %v, want 0600", info.Mode().Perm())
	}
	out := t.TempDir()
	if _, err := Issue(ca, "n1", nil, time.Hour, out, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(ca, "n1", nil, time.Hour, out, now); !errors.Is(err, ErrExists) {
		t.Fatalf("issuing over an existing certificate: %v, want ErrExists", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Now()
	ca, other := newCA(t, now), newCA(t, now)
	good, serial := issue(t, ca, "n1", DefaultNodeValidity, now)
	revokedByName, _ := issue(t, ca, "n2", DefaultNodeValidity, now)
	foreign, _ := issue(t, other, "n1", DefaultNodeValidity, now)
	expired, _ := issue(t, ca, "n3", time.Hour, now.Add(-2*time.Hour))
	revoked := filepath.Join(t.TempDir(), "revoked")
	// A serial is a number, written with or without leading zeros: one of these two lines
	// has an odd count of hex digits, as a serial does whenever its top nibble is zero.
	os.WriteFile(revoked, []byte("# revoked\n\nserial 0"+strings.ToUpper(serial)+"\nserial 00"+serial+"\nnode n2\n"), 0o644)
	v, err := NewVerifier(filepath.Join(ca, CACertFile), revoked)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   *Identity
		as   string
		want string
	}{
		{"another CA", foreign, "n1", "unknown authority"},
		{"another name", good, "n9", `names "n1"`},
		{"revoked serial", good, "n1", "revoked"},
		{"revoked name", revokedByName, "n2", "revoked"},
		{"expired", expired, "n3", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.id.DER, tt.as, now)
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrUntrusted mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := v.Verify([]byte("junk"), "n1", now); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("junk: %v", err)
	}
}

// TestCARotation: a ca.crt holding the old and the new CA trusts both, so
// nodes can move to certificates of the new CA one at a time.
func TestCARotation(t *testing.T) {
	now := time.Now()
	oldCA, newCA := newCA(t, now), newCA(t, now)
	oldID, _ := issue(t, oldCA, "n1", DefaultNodeValidity, now)
	newID, _ := issue(t, newCA, "n2", DefaultNodeValidity, now)
	a, _ := os.ReadFile(filepath.Join(oldCA, CACertFile))
	b, _ := os.ReadFile(filepath.Join(newCA, CACertFile))
	both := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(both, append(a, b...), 0o644)
	v, err := NewVerifier(both, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*Identity{oldID, newID} {
		if _, err := v.Verify(id.DER, id.Name, now); err != nil {
			t.Fatalf("%s: %v", id.Name, err)
		}
	}
}

func TestBadFiles(t *testing.T) {
	now := time.Now()
	ca := newCA(t, now)
	dir := t.TempDir()
	bad := filepath.Join(dir, "revoked")
	os.WriteFile(bad, []byte("serial 0abc\nserail 12\n"), 0o644)
	if _, err := NewVerifier(filepath.Join(ca, CACertFile), bad); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Fatalf("bad revocation line: %v, want the file and line 2 named", err)
	}
	a, _ := issue(t, ca, "a", time.Hour, now)
	certA := filepath.Join(dir, "a.crt")
	os.WriteFile(certA, a.Cert.Raw, 0o644)
	if _, err := Load(certA, certA); err == nil {
		t.Fatal("a DER file loaded as PEM")
	}
	if _, err := Issue(ca, "bad name!", nil, time.Hour, dir, now); err == nil {
		t.Fatal("a name with spaces was issued")
	}
	if _, err := NewVerifier(filepath.Join(dir, "missing.crt"), ""); err == nil {
		t.Fatal("missing CA file accepted")
	}
}
