package source

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrInvalidSource wraps every problem Source.Validate finds.
var ErrInvalidSource = errors.New("source: invalid source")

// ErrUnknownHostKey means an SSH server offered a host key that the known_hosts file
// does not list for that host. Shoal refuses such hosts unless Auth.InsecureIgnoreHostKey.
var ErrUnknownHostKey = errors.New("source: ssh host key is not in known_hosts")

// ErrHostKeyMismatch means an SSH server offered a host key different from the one the
// known_hosts file lists for that host: the host was rebuilt or someone is in the middle.
var ErrHostKeyMismatch = errors.New("source: ssh host key does not match known_hosts")

// Source says where the manifests live: a repository, the ref to follow in it and the
// directory inside it. Build it as a literal; Open validates it.
type Source struct {
	// URL is the repository: an absolute local path or file:///path, https://host/path,
	// http://host/path (without credentials), ssh://[user@]host[:port]/path or the
	// scp-like [user@]host:path. The SSH user defaults to "git". Credentials never go in
	// the URL: they belong in Auth.
	URL string
	// Branch to follow, e.g. "main". With Branch and Tag both empty, the remote's default
	// branch (what its HEAD points to) is followed.
	Branch string
	// Tag to follow instead of a branch. A tag that is moved is followed like a
	// force-pushed branch.
	Tag string
	// Commit pins one commit (40 hex digits). It is fetched from Branch, or from the
	// default branch, must be reachable from it, and once loaded the remote is no longer
	// asked for anything.
	Commit string
	// Path is the manifest root inside the repository: relative, slash-separated; empty
	// means the repository root.
	Path string
	// Auth holds the credentials and trust settings of URL's transport.
	Auth Auth
}

// Auth holds credentials and trust settings. Only the fields of the URL's transport may
// be set: HTTPS fields with an https URL, SSH fields with an ssh URL, none for a local path.
type Auth struct {
	// Username and Password are HTTP basic-auth credentials.
	Username string
	Password string
	// Token is an access token sent as the basic-auth password, as GitHub, GitLab and
	// Gitea accept it; Username then defaults to "git". Token and Password exclude each other.
	Token string
	// CABundle is PEM certificates trusted for HTTPS in addition to the system roots;
	// CAFile names a file holding them instead. At most one of the two.
	CABundle []byte
	CAFile   string
	// InsecureSkipTLS turns off HTTPS certificate checks. Off by default; for tests only.
	InsecureSkipTLS bool

	// SSHKeyFile is the private key (PEM or OpenSSH format) to authenticate with;
	// SSHKeyPassphrase decrypts it when it is encrypted.
	SSHKeyFile       string
	SSHKeyPassphrase string
	// KnownHostsFile lists the SSH host keys to trust, in OpenSSH known_hosts format.
	// Required for SSH: a host whose key it does not list is refused.
	KnownHostsFile string
	// InsecureIgnoreHostKey accepts any SSH host key. Off by default; for tests only.
	InsecureIgnoreHostKey bool
}

// access is a validated Source turned into what go-git needs to reach the remote.
type access struct {
	url         string
	auth        transport.AuthMethod // nil for local paths and anonymous HTTPS
	caBundle    []byte
	insecureTLS bool
	// target is the remote ref followed: refs/heads/<Branch>, refs/tags/<Tag> or HEAD.
	target plumbing.ReferenceName
	pin    plumbing.Hash // zero unless Commit is set
	path   string        // cleaned Path; "." for the root
}

// Validate reports every problem with the Source, wrapped in ErrInvalidSource. It reads
// the files Auth names (CA bundle, SSH key, known_hosts) to check them.
func (s Source) Validate() error {
	_, err := s.resolve()
	return err
}

var commitPattern = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// resolve validates the Source and loads the files it names. It collects every problem
// rather than stopping at the first, so one edit of the configuration fixes them all.
func (s Source) resolve() (*access, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	a := &access{url: s.URL, target: plumbing.HEAD, path: "."}
	scheme, ep := classifyURL(s.URL, bad)

	switch {
	case s.Branch != "" && s.Tag != "":
		bad("branch %q and tag %q exclude each other", s.Branch, s.Tag)
	case s.Branch != "":
		a.target = plumbing.NewBranchReferenceName(s.Branch)
	case s.Tag != "":
		a.target = plumbing.NewTagReferenceName(s.Tag)
	}
	if a.target != plumbing.HEAD {
		if err := a.target.Validate(); err != nil {
			bad("ref %q: %v", a.target, err)
		}
	}
	if s.Commit != "" {
		if !commitPattern.MatchString(s.Commit) {
			bad("commit %q: want the full 40-hex-digit SHA-1", s.Commit)
		} else {
			a.pin = plumbing.NewHash(strings.ToLower(s.Commit))
		}
		if s.Tag != "" {
			bad("commit pin and tag %q exclude each other: pin the commit the tag names", s.Tag)
		}
	}
	if s.Path != "" {
		clean := path.Clean(s.Path)
		if !fs.ValidPath(clean) || strings.HasPrefix(s.Path, "/") {
			bad("path %q: want a relative, slash-separated path inside the repository", s.Path)
		} else {
			a.path = clean
		}
	}

	auth := s.Auth
	httpsSet := auth.Username != "" || auth.Password != "" || auth.Token != "" ||
		len(auth.CABundle) > 0 || auth.CAFile != "" || auth.InsecureSkipTLS
	sshSet := auth.SSHKeyFile != "" || auth.SSHKeyPassphrase != "" || auth.KnownHostsFile != "" ||
		auth.InsecureIgnoreHostKey
	switch scheme {
	case "file":
		if httpsSet || sshSet {
			bad("a local repository takes no credentials or TLS/SSH settings")
		}
	case "http", "https":
		if sshSet {
			bad("SSH settings given for %s URL %q", scheme, redactURL(s.URL))
		}
		a.resolveHTTP(scheme, auth, bad)
	case "ssh":
		if httpsSet {
			bad("HTTPS settings given for SSH URL %q", redactURL(s.URL))
		}
		a.resolveSSH(ep, auth, bad)
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSource, errors.Join(problems...))
	}
	return a, nil
}

// classifyURL returns the transport scheme of a repository URL ("file", "http", "https"
// or "ssh") and its parsed endpoint, reporting URLs Shoal does not accept.
func classifyURL(raw string, bad func(string, ...any)) (string, *transport.Endpoint) {
	if raw == "" {
		bad("URL is empty")
		return "", nil
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		bad("URL %q: %v", redactURL(raw), err)
		return "", nil
	}
	switch ep.Protocol {
	case "file":
		// go-git makes a relative path absolute against the working directory; a daemon's
		// working directory is an accident, so only absolute paths are accepted.
		if !strings.HasPrefix(raw, "file://") && !filepath.IsAbs(raw) {
			bad("local repository path %q must be absolute", raw)
		}
	case "http", "https":
		if ep.User != "" || ep.Password != "" {
			bad("URL %q carries credentials: put them in Auth", redactURL(raw))
		}
	case "ssh":
		if ep.Password != "" {
			bad("URL %q carries a password: use Auth.SSHKeyFile", redactURL(raw))
		}
	default:
		bad("URL %q: scheme %q is not supported (want a local path, https, http or ssh)", redactURL(raw), ep.Protocol)
	}
	return ep.Protocol, ep
}

func (a *access) resolveHTTP(scheme string, auth Auth, bad func(string, ...any)) {
	if auth.Token != "" && auth.Password != "" {
		bad("Auth.Token and Auth.Password exclude each other")
	}
	password := auth.Password + auth.Token
	if password != "" || auth.Username != "" {
		if scheme == "http" {
			bad("refusing to send credentials over plain http: use https")
		}
		username := auth.Username
		if username == "" {
			username = "git" // token hosts accept any non-empty user name
		}
		a.auth = &githttp.BasicAuth{Username: username, Password: password}
	}
	if len(auth.CABundle) > 0 && auth.CAFile != "" {
		bad("Auth.CABundle and Auth.CAFile exclude each other")
	}
	bundle := auth.CABundle
	if auth.CAFile != "" {
		b, err := os.ReadFile(auth.CAFile)
		if err != nil {
			bad("CA file: %v", err)
		}
		bundle = b
	}
	if len(bundle) > 0 && !x509.NewCertPool().AppendCertsFromPEM(bundle) {
		bad("CA bundle holds no PEM certificate")
	}
	a.caBundle = bundle
	a.insecureTLS = auth.InsecureSkipTLS
}

func (a *access) resolveSSH(ep *transport.Endpoint, auth Auth, bad func(string, ...any)) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	if auth.SSHKeyFile == "" {
		bad("SSH needs Auth.SSHKeyFile")
		return
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, auth.SSHKeyFile, auth.SSHKeyPassphrase)
	if err != nil {
		bad("SSH key %s: %v", auth.SSHKeyFile, err)
		return
	}
	switch {
	case auth.InsecureIgnoreHostKey && auth.KnownHostsFile != "":
		bad("Auth.KnownHostsFile and Auth.InsecureIgnoreHostKey exclude each other")
	case auth.InsecureIgnoreHostKey:
		keys.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	case auth.KnownHostsFile == "":
		bad("SSH needs Auth.KnownHostsFile listing the server's host key")
	default:
		db, err := gitssh.NewKnownHostsDb(auth.KnownHostsFile)
		if err != nil {
			bad("known_hosts %s: %v", auth.KnownHostsFile, err)
			return
		}
		hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
		keys.HostKeyCallback = hostKeyCallback(db.HostKeyCallback(), auth.KnownHostsFile)
		// Offer only the key types known_hosts lists for this host, so the server
		// presents a key we can check rather than one of a type we have no line for.
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostPort)
	}
	a.auth = sshAuth{keys}
}

// sshDialTimeout bounds connecting to an SSH remote.
const sshDialTimeout = 30 * time.Second

// sshAuth sets a dial timeout: go-git dials SSH without the caller's context, so an
// unreachable host would otherwise hold a check for the kernel's TCP timeout.
type sshAuth struct{ *gitssh.PublicKeys }

// ClientConfig implements go-git's ssh.AuthMethod.
func (a sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = sshDialTimeout
	return cfg, nil
}

// hostKeyCallback checks host keys against known_hosts and turns its errors into our
// sentinels, naming the file so the operator knows what to edit.
func hostKeyCallback(check ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var keyErr *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
			return fmt.Errorf("%w: %s offered %s key %s; add it to %s after checking it",
				ErrUnknownHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), file)
		case errors.As(err, &keyErr):
			return fmt.Errorf("%w: %s offered %s key %s, %s lists another",
				ErrHostKeyMismatch, hostname, key.Type(), ssh.FingerprintSHA256(key), file)
		default:
			return fmt.Errorf("source: check host key of %s: %w", hostname, err)
		}
	}
}

// redactURL hides the user information of a URL for error messages. It works on the
// string so that even a URL too broken to parse does not leak a password.
func redactURL(raw string) string {
	scheme := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if scheme < 0 || at < scheme {
		return raw
	}
	return raw[:scheme+3] + "xxxxx" + raw[at:]
}
