package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"
)

// APIConfig secures and bounds the agent's HTTP API. Start from DefaultAPIConfig.
type APIConfig struct {
	// Token is the bearer token that every request but /healthz, /readyz and /webhook must
	// carry ("Authorization: Bearer TOKEN"). Empty lets in only clients with a verified
	// certificate (see TLS.ClientCAs): the API fails closed.
	Token string
	// Webhook serves /webhook with its own signature check; nil turns /webhook off.
	Webhook http.Handler
	// MaxFollowStreams caps `/logs?follow=1` streams open at once on this agent, and
	// MaxFollowStreamsPerClient those from one client address; more get 429.
	MaxFollowStreams, MaxFollowStreamsPerClient int
	// StreamWriteTimeout bounds each write of a /logs response: a client that stops
	// reading is cut off after it, one that reads slowly but steadily never is.
	StreamWriteTimeout time.Duration
}

// DefaultAPIConfig returns the limits: 32 follow streams, 4 per client address, and 30s
// for each write of a log stream.
func DefaultAPIConfig() APIConfig {
	return APIConfig{MaxFollowStreams: 32, MaxFollowStreamsPerClient: 4, StreamWriteTimeout: 30 * time.Second}
}

// Server timeouts of the API: a client must send its headers within apiReadHeaderTimeout
// and its body within apiReadTimeout, and gets apiWriteTimeout for the whole answer
// (/logs, which may stream for hours, moves its deadline forward on every write instead).
const (
	apiReadHeaderTimeout = 10 * time.Second
	apiReadTimeout       = 30 * time.Second
	apiWriteTimeout      = time.Minute
	apiIdleTimeout       = 2 * time.Minute
	apiMaxHeaderBytes    = 64 << 10
	// apiMaxBody bounds every request body; only /webhook reads one, and it has its own
	// (equal) limit.
	apiMaxBody = 1 << 20
)

// NewAPIServer returns an http.Server for h with the API's timeouts and header limit.
// With tlsConfig it must be served with ServeTLS(ln, "", "").
func NewAPIServer(h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, apiMaxBody),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: apiReadHeaderTimeout,
		ReadTimeout:       apiReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       apiIdleTimeout,
		MaxHeaderBytes:    apiMaxHeaderBytes,
	}
}

// IsLoopback reports whether a listen address (host:port) accepts only local clients. An
// empty or unspecified host (":7070", "0.0.0.0:7070") listens everywhere; a name is taken
// to be non-local unless it is "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// minTokenLen is the shortest token accepted: a generated one is 43 characters (256 bits).
const minTokenLen = 16

// ReadAPIToken reads a token file: the token on its first line, surrounding space ignored.
func ReadAPIToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("API token: %w", err)
	}
	token, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	token = strings.TrimSpace(token)
	if len(token) < minTokenLen {
		return "", fmt.Errorf("API token %s: line 1: token is %d characters, want at least %d", path, len(token), minTokenLen)
	}
	return token, nil
}

// LoadOrCreateAPIToken returns the token in path, first writing a new random one (mode
// 0600) if the file does not exist. It refuses a file that anyone but its owner (and
// group, for a group of operators) may read or write, as ssh refuses such a private key.
func LoadOrCreateAPIToken(path string) (token string, created bool, err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeNewToken(path); err != nil {
			return "", false, err
		}
		created = true
		info, err = os.Stat(path)
	}
	if err != nil {
		return "", false, fmt.Errorf("API token: %w", err)
	}
	if mode := info.Mode().Perm(); mode&0o027 != 0 {
		return "", false, fmt.Errorf("API token %s: mode %04o lets others read or change it; chmod 600 (or 640 for a group of operators)", path, mode)
	}
	token, err = ReadAPIToken(path)
	return token, created, err
}

// writeNewToken writes a fresh token to a temporary file and links it into place, so that
// a crash never leaves a half-written token and a racing writer's token is kept.
func writeNewToken(path string) error {
	var raw [32]byte
	rand.Read(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("API token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".api-token-*") // mode 0600
	if err != nil {
		return fmt.Errorf("API token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.RawURLEncoding.EncodeToString(raw[:]) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("API token: %w", err)
	}
	return nil
}

// authenticator lets a request through when it carries the token or a client certificate
// that the TLS handshake verified against the configured client CAs.
type authenticator struct {
	tokenSum [sha256.Size]byte
	hasToken bool
}

func newAuthenticator(token string) authenticator {
	return authenticator{tokenSum: sha256.Sum256([]byte(token)), hasToken: token != ""}
}

func (a authenticator) allowed(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !a.hasToken || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Compare digests so that neither the time taken nor a length mismatch says anything
	// about the token.
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// wrap answers 401 to requests that are not allowed, and hands the others to next.
func (a authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			http.Error(w, "unauthorized: send the agent's API token (Authorization: Bearer) or a client certificate", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// streamLimiter counts open log streams, in all and per client address.
type streamLimiter struct {
	max, maxPerClient int

	mu        gosync.Mutex
	open      int
	perClient map[string]int
}

func newStreamLimiter(max, maxPerClient int) *streamLimiter {
	return &streamLimiter{max: max, maxPerClient: maxPerClient, perClient: map[string]int{}}
}

// acquire takes a slot for client, or says why it cannot; release gives it back.
func (l *streamLimiter) acquire(client string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return nil, fmt.Errorf("%d log streams are open on this agent, the most it serves", l.open)
	case l.perClient[client] >= l.maxPerClient:
		return nil, fmt.Errorf("%d log streams are open from %s, the most one client gets", l.perClient[client], client)
	}
	l.open++
	l.perClient[client]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.open--
		if l.perClient[client]--; l.perClient[client] == 0 {
			delete(l.perClient, client)
		}
	}, nil
}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
