package gossip

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoalhq/shoal/identity"
)

// testCA is a cluster CA made once per test binary, with a certificate per
// node name issued on first use.
type testCA struct {
	once     sync.Once
	dir      string
	verifier *identity.Verifier
	mu       sync.Mutex
	ids      map[string]*identity.Identity
}

var (
	clusterCA = &testCA{}
	// rogueCA is another CA: its certificates are not trusted by clusterCA's nodes.
	rogueCA = &testCA{}
)

func (ca *testCA) init() {
	ca.once.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-gossip-ca-")
		if err != nil {
			panic(err)
		}
		ca.dir, ca.ids = dir, map[string]*identity.Identity{}
		if err := identity.InitCA(dir, "test CA", time.Hour, time.Now()); err != nil {
			panic(err)
		}
		if ca.verifier, err = identity.NewVerifier(filepath.Join(dir, identity.CACertFile), ""); err != nil {
			panic(err)
		}
	})
}

// id returns the CA's identity for name. Setup errors panic: nothing can run without it.
func (ca *testCA) id(name string) *identity.Identity {
	ca.init()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if id := ca.ids[name]; id != nil {
		return id
	}
	out := filepath.Join(ca.dir, "nodes", name)
	if _, err := identity.Issue(ca.dir, name, nil, time.Hour, out, time.Now()); err != nil {
		panic(err)
	}
	id, err := identity.Load(filepath.Join(out, identity.NodeCertFile), filepath.Join(out, identity.NodeKeyFile))
	if err != nil {
		panic(err)
	}
	ca.ids[name] = id
	return id
}

// trusts returns a verifier that trusts this CA.
func (ca *testCA) trusts() *identity.Verifier {
	ca.init()
	return ca.verifier
}

// removeTestCAs deletes the CAs' directories; TestMain calls it.
func removeTestCAs() {
	for _, ca := range []*testCA{clusterCA, rogueCA} {
		if ca.dir != "" {
			os.RemoveAll(ca.dir)
		}
	}
}
