package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoalhq/shoal/agent"
)

// defaultTokenFile is where an agent with the default --state-dir keeps its API token, so
// that the CLI on the same machine finds it (when it may read it: mode 0600, owner root).
// Tests point it elsewhere, lest an agent on the test machine answer for them.
var defaultTokenFile = "/var/lib/shoal/api-token"

// apiServerFlags are the `shoal agent` flags that secure its HTTP API.
type apiServerFlags struct {
	tokenFile       string
	tlsCert, tlsKey string
	clientCA        string
}

func (f *apiServerFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.tokenFile, "api-token-file", "", "file of the API's bearer token, created (mode 0600) if missing (default: STATE-DIR/api-token)")
	fl.StringVar(&f.tlsCert, "api-tls-cert", "", "PEM certificate (chain) the API serves HTTPS with, e.g. the node certificate from shoal ca issue")
	fl.StringVar(&f.tlsKey, "api-tls-key", "", "PEM private key of --api-tls-cert")
	fl.StringVar(&f.clientCA, "api-client-ca", "", "PEM CA bundle: clients with a certificate it signed need no token (mutual TLS; needs --api-tls-cert)")
}

// config reads the token (creating it at first start) and the TLS files, and warns when
// the API would be reachable from other machines in plain HTTP.
func (f *apiServerFlags) config(defaultTokenPath, listen string, log *slog.Logger) (agent.APIConfig, *tls.Config, error) {
	cfg := agent.DefaultAPIConfig()
	path := f.tokenFile
	if path == "" {
		path = defaultTokenPath
	}
	token, created, err := agent.LoadOrCreateAPIToken(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("--api-token-file: %w", err)
	}
	if created {
		log.Info("API token created; the CLI reads it from this file, or from $SHOAL_TOKEN", "file", path)
	}
	cfg.Token = token
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return cfg, nil, errors.New("--api-tls-cert and --api-tls-key go together")
	}
	if f.tlsCert == "" {
		if f.clientCA != "" {
			return cfg, nil, errors.New("--api-client-ca needs --api-tls-cert and --api-tls-key")
		}
		if !agent.IsLoopback(listen) {
			log.Warn("the API listens beyond loopback without TLS: its token and answers cross the network in clear; give --api-tls-cert and --api-tls-key", "listen", listen)
		}
		return cfg, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return cfg, nil, fmt.Errorf("--api-tls-cert %s, --api-tls-key %s: %w", f.tlsCert, f.tlsKey, err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		if tlsCfg.ClientCAs, err = readCAs("--api-client-ca", f.clientCA); err != nil {
			return cfg, nil, err
		}
		// IfGiven: clients without a certificate may still come with the token.
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, tlsCfg, nil
}

// serveAPI serves the API on ln until srv is shut down.
func serveAPI(srv *http.Server, ln net.Listener, log *slog.Logger) {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		log.Error("the API stopped", "err", err)
	}
}

func readCAs(flag, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// apiClientFlags say how the CLI reaches and proves itself to an agent's API.
type apiClientFlags struct {
	tokenFile             string
	caCert                string
	clientCert, clientKey string
}

func (f *apiClientFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.tokenFile, "token-file", "", "file of the agent's API token (default: $SHOAL_TOKEN, $SHOAL_TOKEN_FILE, then "+defaultTokenFile+")")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM CA bundle to verify the agent's HTTPS certificate (an address without a scheme then means https://)")
	fl.StringVar(&f.clientCert, "client-cert", "", "PEM client certificate for an agent that accepts mutual TLS (instead of the token)")
	fl.StringVar(&f.clientKey, "client-key", "", "PEM private key of --client-cert")
}

// apiClient talks to one agent.
type apiClient struct {
	base    string // scheme://host:port
	token   string
	noToken string // why there is no token, for the hint after a 401
	http    *http.Client
}

// client returns a client for the agent at addr: host:port, http://host:port or https://host:port.
func (f *apiClientFlags) client(addr string) (*apiClient, error) {
	c := &apiClient{base: addr}
	secure := f.caCert != "" || f.clientCert != ""
	switch {
	case strings.HasPrefix(addr, "https://"), strings.HasPrefix(addr, "http://"):
	case strings.Contains(addr, "://"):
		return nil, fmt.Errorf("agent address %q: want host:port, http:// or https://", addr)
	case secure:
		c.base = "https://" + addr
	default:
		c.base = "http://" + addr
	}
	c.base = strings.TrimSuffix(c.base, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if f.caCert != "" {
		if tr.TLSClientConfig.RootCAs, err = readCAs("--ca-cert", f.caCert); err != nil {
			return nil, err
		}
	}
	if (f.clientCert == "") != (f.clientKey == "") {
		return nil, errors.New("--client-cert and --client-key go together")
	}
	if f.clientCert != "" {
		cert, err := tls.LoadX509KeyPair(f.clientCert, f.clientKey)
		if err != nil {
			return nil, fmt.Errorf("--client-cert %s, --client-key %s: %w", f.clientCert, f.clientKey, err)
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	c.http = &http.Client{Transport: tr}
	if c.token, c.noToken, err = f.token(); err != nil {
		return nil, err
	}
	return c, nil
}

// token finds the API token: --token-file, $SHOAL_TOKEN, $SHOAL_TOKEN_FILE, or the file an
// agent on this machine keeps. No token is not an error (the agent may take a client
// certificate); noToken then says where the CLI looked.
func (f *apiClientFlags) token() (token, noToken string, err error) {
	switch {
	case f.tokenFile != "":
		token, err = agent.ReadAPIToken(f.tokenFile)
		return token, "", wrapErr("--token-file", err)
	case os.Getenv("SHOAL_TOKEN") != "":
		return strings.TrimSpace(os.Getenv("SHOAL_TOKEN")), "", nil
	case os.Getenv("SHOAL_TOKEN_FILE") != "":
		token, err = agent.ReadAPIToken(os.Getenv("SHOAL_TOKEN_FILE"))
		return token, "", wrapErr("$SHOAL_TOKEN_FILE", err)
	}
	token, err = agent.ReadAPIToken(defaultTokenFile)
	if err != nil {
		return "", err.Error(), nil
	}
	return token, "", nil
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// get sends GET path to the agent and returns the response if it is 200 OK; any other
// status becomes an error carrying the agent's message.
func (c *apiClient) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	err = fmt.Errorf("agent at %s: %w", c.base, &statusError{code: resp.StatusCode, status: resp.Status, body: strings.TrimSpace(string(msg))})
	if resp.StatusCode == http.StatusUnauthorized {
		hint := "give its API token with --token-file, $SHOAL_TOKEN or $SHOAL_TOKEN_FILE (the agent keeps it in STATE-DIR/api-token)"
		if c.token != "" {
			hint = "the agent refused the token given"
		} else if c.noToken != "" {
			hint += "; " + c.noToken
		}
		err = fmt.Errorf("%w\n%s", err, hint)
	}
	return nil, err
}

// statusError is an agent's answer other than 200 OK, for callers that branch on the code.
type statusError struct {
	code   int
	status string // "404 Not Found"
	body   string // the agent's message, its first 4 KiB
}

func (e *statusError) Error() string { return e.status + ": " + e.body }

// getJSON GETs path and decodes the JSON answer into v; it returns the raw body.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	resp, err := c.get(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("agent at %s: %w", c.base, err)
	}
	return body, nil
}
