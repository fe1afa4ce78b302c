package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
		err           error
	}{
		{
			name: "systemd-resolved stub",
			content: "# This is /run/systemd/resolve/stub-resolv.conf\n" +
				"nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
			want: []string{"127.0.0.53:53"},
		},
		{
			name:    "several, in order, v6 included",
			content: "nameserver 192.0.2.1\n\tnameserver   2001:db8::1  \nnameserver fe80::1%eth0\n",
			want:    []string{"192.0.2.1:53", "[2001:db8::1]:53", "[fe80::1%eth0]:53"},
		},
		{
			name:    "comments and host names are skipped",
			content: "#nameserver 192.0.2.9\n; nameserver 192.0.2.8\nnameserver dns.example.org\nnameserver 192.0.2.2\n",
			want:    []string{"192.0.2.2:53"},
		},
		{
			name:    "no nameserver",
			content: "search example.org\n",
			err:     ErrNoNameservers,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ParseResolvConf(path)
			if !errors.Is(err, tt.err) || !slices.Equal(got, tt.want) {
				t.Errorf("ParseResolvConf = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			for _, u := range got {
				if _, err := parseUpstream(u); err != nil {
					t.Errorf("result %q is not a valid Config.Upstreams entry: %v", u, err)
				}
			}
		})
	}
	if _, err := ParseResolvConf(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestContainerResolvConf(t *testing.T) {
	tests := []struct {
		name       string
		nameserver string
		namespace  string
		domain     string
		ndots      int
		want       string
	}{
		{"kubernetes default", "10.0.0.1", "shop", "cluster.local", DefaultNdots,
			"nameserver 10.0.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"fully qualified, mixed case domain", "10.0.0.1", "default", "Cluster.Local.", 2,
			"nameserver 10.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:2\n"},
		{"v6 nameserver, no namespace", "fd00::53", "", "cluster.local", 5,
			"nameserver fd00::53\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"ndots clamped to glibc's range", "10.0.0.1", "a", "k8s.test", 99,
			"nameserver 10.0.0.1\nsearch a.svc.k8s.test svc.k8s.test k8s.test\noptions ndots:15\n"},
		{"negative ndots is 0", "10.0.0.1", "a", "k8s.test", -1,
			"nameserver 10.0.0.1\nsearch a.svc.k8s.test svc.k8s.test k8s.test\noptions ndots:0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(ContainerResolvConf(netip.MustParseAddr(tt.nameserver), tt.namespace, tt.domain, tt.ndots))
			if got != tt.want {
				t.Errorf("ContainerResolvConf =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
