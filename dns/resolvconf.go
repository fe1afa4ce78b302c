package dns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNoNameservers is returned by ParseResolvConf for a file that names no nameserver.
var ErrNoNameservers = errors.New("no nameserver")

// DefaultNdots is the ndots Kubernetes writes into pods' resolv.conf: names with fewer than
// five dots try the search domains first, so "web" and "web.shop" find Services.
const DefaultNdots = 5

// maxNdots is the largest ndots glibc honours.
const maxNdots = 15

// ParseResolvConf returns the nameservers of a resolv.conf file as "ip:53" upstreams, in
// file order, for Config.Upstreams. Lines other than "nameserver" are ignored, as are
// nameservers that are not IP addresses.
func ParseResolvConf(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dns: resolv.conf: %w", err)
	}
	var upstreams []string
	lines := bufio.NewScanner(bytes.NewReader(data))
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if addr, err := netip.ParseAddr(fields[1]); err == nil {
			upstreams = append(upstreams, netip.AddrPortFrom(addr, 53).String())
		}
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("dns: resolv.conf %s: %w", path, err)
	}
	if len(upstreams) == 0 {
		return nil, fmt.Errorf("dns: resolv.conf %s: %w", path, ErrNoNameservers)
	}
	return upstreams, nil
}

// ContainerResolvConf returns the resolv.conf for a container in namespace: this node's
// DNS server as the nameserver, and Kubernetes' search path (NAMESPACE.svc.DOMAIN
// svc.DOMAIN DOMAIN) so that "web" and "web.other" resolve to Services. ndots is written
// clamped to 0..15 (glibc's range); Kubernetes uses DefaultNdots. The executor mounts it.
func ContainerResolvConf(nameserver netip.Addr, namespace, domain string, ndots int) []byte {
	domain = strings.Trim(strings.ToLower(domain), ".")
	var search []string
	if namespace != "" {
		search = append(search, namespace+".svc."+domain)
	}
	search = append(search, "svc."+domain, domain)
	ndots = min(max(ndots, 0), maxNdots)
	return []byte("nameserver " + nameserver.String() + "\n" +
		"search " + strings.Join(search, " ") + "\n" +
		"options ndots:" + strconv.Itoa(ndots) + "\n")
}
