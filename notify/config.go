package notify

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is what `shoal agent` flags and environment configure. A sink is on when its
// destination (GitHubRepo, GitLabProject, WebhookURL) is set; its credential is then
// required.
type Config struct {
	GitHubRepo  string // "owner/name"
	GitHubAPI   string // API base URL; default DefaultGitHubAPI (GitHub Enterprise Server: https://HOST/api/v3)
	GitHubToken string // a token that may write commit statuses

	GitLabProject string // project path "group/name" (subgroups too) or numeric ID
	GitLabAPI     string // instance URL, without /api/v4; default DefaultGitLabAPI
	GitLabToken   string // a personal, project or group access token with the api scope

	WebhookURL    string // where the signed JSON report is POSTed
	WebhookSecret string // HMAC-SHA256 key of X-Shoal-Signature-256; required with WebhookURL

	Context string // the status's context (GitHub) or name (GitLab); default DefaultContext
	LinkURL string // target_url template, "{commit}" replaced by the SHA; "" for none

	// HTTPClient sends the requests; nil means a client with a 10 s timeout. Redirects are
	// never followed whatever the client says: a redirect would carry the token elsewhere.
	HTTPClient *http.Client
}

// Defaults for Config's empty fields.
const (
	DefaultGitHubAPI = "https://api.github.com"
	DefaultGitLabAPI = "https://gitlab.com"
	DefaultContext   = "shoal"
)

// MaxContext is the longest Context accepted, in characters.
const MaxContext = 100

// ConfigError says which Config field New refused and why; it never holds the value of a
// token or secret.
type ConfigError struct {
	Field   string // the Config field, e.g. "GitHubToken"
	Problem string
}

func (e *ConfigError) Error() string { return "notify: " + e.Field + ": " + e.Problem }

var (
	// githubRepoPattern is GitHub's owner/name: letters, digits, '-', '_' and '.'.
	githubRepoPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	// gitlabProjectPattern is a numeric project ID or a namespace/project path.
	gitlabProjectPattern = regexp.MustCompile(`^([0-9]+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+)$`)
)

// New validates cfg and returns a Notifier for the sinks it names; with none it returns a
// disabled Notifier. API and webhook URLs must be https, or plain http to a loopback
// address only (a local proxy or test server), since requests carry a token or a
// signature; they may not hold a user name or password.
func New(cfg Config) (*Notifier, error) {
	cfg.Context = strings.TrimSpace(cfg.Context)
	if cfg.Context == "" {
		cfg.Context = DefaultContext
	}
	if err := checkText("Context", cfg.Context, MaxContext); err != nil {
		return nil, err
	}
	link, err := checkLink(cfg.LinkURL)
	if err != nil {
		return nil, err
	}
	c := defaultHTTPClient()
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		c = &copied
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	n := &Notifier{wait: sleep, jitter: jitter, now: time.Now}
	if cfg.GitHubRepo != "" {
		s, err := newGitHub(cfg, c, link)
		if err != nil {
			return nil, err
		}
		n.sinks = append(n.sinks, s)
	}
	if cfg.GitLabProject != "" {
		s, err := newGitLab(cfg, c, link)
		if err != nil {
			return nil, err
		}
		n.sinks = append(n.sinks, s)
	}
	if cfg.WebhookURL != "" {
		s, err := newWebhook(cfg, c, link)
		if err != nil {
			return nil, err
		}
		n.sinks = append(n.sinks, s)
	}
	return n, nil
}

// jitter spreads retries of many nodes apart: a delay in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// checkEndpoint parses an API or webhook URL: https, or http to loopback only; no user
// information; a query only where allowQuery (a webhook's may carry its own key).
func checkEndpoint(field, raw, def string, allowQuery bool) (*url.URL, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, &ConfigError{field, "want an absolute URL such as https://host/path"}
	}
	switch {
	case u.User != nil:
		return nil, &ConfigError{field, "a URL may not hold a user name or password; credentials come from the environment"}
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, &ConfigError{field, fmt.Sprintf("plain http to %s would send credentials unencrypted: use https (http is allowed to loopback addresses only)", u.Hostname())}
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, &ConfigError{field, fmt.Sprintf("scheme %q: want https", u.Scheme)}
	case !allowQuery && (u.RawQuery != "" || u.Fragment != ""):
		return nil, &ConfigError{field, "an API base URL has no query or fragment"}
	}
	u.Fragment, u.RawFragment = "", ""
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkCredential refuses a missing token or secret, and one no HTTP header could carry;
// the message never quotes it.
func checkCredential(field, value string) error {
	if value == "" {
		return &ConfigError{field, "required to report there"}
	}
	for _, c := range value {
		if c <= ' ' || c >= 0x7f {
			return &ConfigError{field, "has a space, control or non-ASCII character (a stray newline?)"}
		}
	}
	return nil
}

// checkText refuses an empty, overlong or multi-line setting.
func checkText(field, s string, limit int) error {
	switch {
	case s == "" || len([]rune(s)) > limit:
		return &ConfigError{field, fmt.Sprintf("want 1 to %d characters", limit)}
	case oneLine(s) != s:
		return &ConfigError{field, "want one line without control characters or runs of spaces"}
	}
	return nil
}

// checkLink validates the target_url template with a SHA in place of {commit}. Links are
// only shown to people, so plain http is allowed.
func checkLink(tmpl string) (string, error) {
	if tmpl == "" {
		return "", nil
	}
	u, err := url.Parse(linkFor(tmpl, strings.Repeat("0", 40)))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", &ConfigError{"LinkURL", `want an http(s) URL without credentials, "{commit}" standing for the SHA`}
	}
	if len(tmpl) > 2000 {
		return "", &ConfigError{"LinkURL", "longer than 2000 bytes"}
	}
	return tmpl, nil
}

// linkFor is the report's target_url: the template with {commit} replaced.
func linkFor(tmpl, commit string) string {
	if tmpl == "" {
		return ""
	}
	return strings.ReplaceAll(tmpl, "{commit}", commit)
}
