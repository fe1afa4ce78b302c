package executor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
)

// EnsureImage implements Runtime.
func (c *Containerd) EnsureImage(ctx context.Context, ref string, policy PullPolicy) error {
	_, err := c.image(c.withNS(ctx), ref, policy)
	return err
}

// image returns ref unpacked for the runtime's snapshotter, fetching it as policy says.
// Every failure wraps ErrImagePull.
func (c *Containerd) image(ctx context.Context, ref string, policy PullPolicy) (containerd.Image, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImagePull, ref, err)
	}
	name := named.String()
	if policy != PullAlways {
		img, err := c.client.GetImage(ctx, name)
		switch {
		case err == nil:
			if err := c.unpack(ctx, img); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrImagePull, ref, err)
			}
			return img, nil
		case !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("%w: %s: %w", ErrImagePull, ref, err)
		case policy == PullNever:
			return nil, fmt.Errorf("%w: %s is not present and the pull policy is Never: %w", ErrImagePull, ref, err)
		}
	}
	resolver, err := c.resolver()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImagePull, ref, err)
	}
	img, err := c.client.Pull(ctx, name,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter),
		containerd.WithResolver(resolver))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImagePull, ref, err)
	}
	return img, nil
}

// unpack makes sure an image already in the content store has a snapshot to start from
// (an imported image, or one pulled for another snapshotter, has none).
func (c *Containerd) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil || ok {
		return err
	}
	return img.Unpack(ctx, snapshotter)
}

// resolver speaks plain HTTP to loopback registries and those the options name, and
// reads credentials from the Docker config on every pull, so a changed file applies at once.
func (c *Containerd) resolver() (remotes.Resolver, error) {
	creds, err := readDockerConfig(c.cfg.dockerConfig)
	if err != nil {
		return nil, err
	}
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(plainHTTPHosts(c.cfg.plainHTTP)),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(creds.lookup))),
	)
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts}), nil
}

// plainHTTPHosts says which registries are spoken to over plain HTTP: loopback ones and
// those listed (as host or host:port, compared as written).
func plainHTTPHosts(listed []string) func(string) (bool, error) {
	return func(host string) (bool, error) {
		if local, _ := docker.MatchLocalhost(host); local {
			return true, nil
		}
		return slices.Contains(listed, host), nil
	}
}

// dockerCredentials are the "auths" of a Docker config.json, keyed by registry host.
type dockerCredentials map[string]dockerAuth

type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// readDockerConfig reads the "auths" of a Docker config.json; an empty path means no
// credentials. Credential helpers (credsStore, credHelpers) are not run.
func readDockerConfig(path string) (dockerCredentials, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	var file struct {
		Auths map[string]dockerAuth `json:"auths"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	creds := make(dockerCredentials, len(file.Auths))
	for key, a := range file.Auths {
		creds[registryHost(key)] = a
	}
	return creds, nil
}

// registryHost turns a config.json key ("https://index.docker.io/v1/", "host:5000") into
// the host the resolver asks about.
func registryHost(key string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	if host == "index.docker.io" || host == "docker.io" {
		return "registry-1.docker.io"
	}
	return host
}

// lookup returns the username and secret for host; an identity token is returned as the
// secret with an empty username, which the authorizer sends as a refresh token.
func (d dockerCredentials) lookup(host string) (string, string, error) {
	a, ok := d[host]
	if !ok {
		return "", "", nil
	}
	if a.IdentityToken != "" {
		return "", a.IdentityToken, nil
	}
	if a.Auth == "" {
		return a.Username, a.Password, nil
	}
	raw, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return "", "", fmt.Errorf("docker config: auth for %s: %w", host, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errors.New("docker config: auth for " + host + " is not user:password")
	}
	return user, pass, nil
}
