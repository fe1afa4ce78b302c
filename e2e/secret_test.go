package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestSecretVolumeInClusterMode checks that a Secret mounted as a volume has its content
// in the container when the agent runs in a node's network namespace, as in a cluster.
// The agent writes Secret files on a tmpfs it mounts itself; started with `ip netns exec`,
// which also gives it a mount namespace of its own, that tmpfs was invisible to containerd,
// and the container saw an empty directory.
func TestSecretVolumeInClusterMode(t *testing.T) {
	const password = "s3cr3t-in-a-netns"
	web := servingDeployment("web", 1, 8080,
		"      volumes:\n      - name: secret\n        secret: {secretName: web-secret}\n")
	web = strings.Replace(web, "        ports:\n", "        volumeMounts:\n        - {name: secret, mountPath: /etc/secret}\n        ports:\n", 1)
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: web-secret}\nstringData:\n  password: " + password + "\n"
	repo := testsupport.NewRepo(t)
	repo.Commit("a Secret volume", map[string]string{"web.yaml": web, "secret.yaml": secret})
	c := newCluster(t, repo, 1, 2)

	st := c.agents[1].waitFor("web ready", func(st *agent.Status) bool { return len(where(st, "web")) == 1 })
	node := where(st, "web")[0]
	url := fmt.Sprintf("http://%s:8080/file?path=/etc/secret/password", c.net.addr(int(node[len("node")]-'0')))
	var got string
	c.agents[1].waitFor("the Secret's file served", func(*agent.Status) bool {
		got = get(url)
		return got != "" // any answer: the volume was filled before the container started
	})
	if got != password {
		t.Errorf("/etc/secret/password in the container on %s: %q, want %q", node, got, password)
	}
}
