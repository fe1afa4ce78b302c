package source

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// newHTTPSRemote serves the repositories under root over HTTPS with git http-backend,
// requiring basic auth as user:password.
func newHTTPSRemote(t *testing.T, root, user, password string) *httptest.Server {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Fatalf("the HTTPS tests need %s from the git package: %v", gitHTTPBackend, err)
	}
	backend := &cgi.Handler{
		Path: gitHTTPBackend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	// The untrusted-certificate case makes the server log a handshake error: expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPS(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	srv := newHTTPSRemote(t, filepath.Dir(up.Bare), "deploy", "s3cret")
	url := srv.URL + "/" + filepath.Base(up.Bare)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(ca))

	for _, tc := range []struct {
		name    string
		auth    Auth
		wantErr error  // nil: fetch and load work
		wantMsg string // in the error
	}{
		{"password and CA bundle", Auth{Username: "deploy", Password: "s3cret", CABundle: ca}, nil, ""},
		{"token as password, CA file", Auth{Username: "deploy", Token: "s3cret", CAFile: caFile}, nil, ""},
		{"insecure skip TLS", Auth{Username: "deploy", Password: "s3cret", InsecureSkipTLS: true}, nil, ""},
		{"bad password", Auth{Username: "deploy", Password: "guess", CABundle: ca}, transport.ErrAuthenticationRequired, "authentication required"},
		{"no credentials", Auth{CABundle: ca}, transport.ErrAuthenticationRequired, "authentication required"},
		{"untrusted certificate", Auth{Username: "deploy", Password: "s3cret"}, nil, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openRepo(t, Source{URL: url, Auth: tc.auth}, t.TempDir())
			_, err := r.Head(context.Background())
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Head: %v", err)
				}
				if d := fetchAndLoad(t, r); d.Revision.Commit != c1 {
					t.Errorf("loaded %s, want %s", d.Revision.Commit, c1)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Head: %v; want an error with %q", err, tc.wantMsg)
			}
			t.Logf("as reported: %v", err)
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "guess") {
				t.Errorf("error leaks the password: %v", err)
			}
			if _, err := r.Fetch(context.Background()); err == nil {
				t.Error("Fetch succeeded where Head failed")
			}
		})
	}
}

// sshRemote is an in-process SSH server on loopback that runs git-upload-pack for the
// repository a client asks for, accepting one client key.
type sshRemote struct {
	addr    string
	hostKey ssh.PublicKey
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newSSHRemote(t *testing.T, clientKey ssh.PublicKey) *sshRemote {
	t.Helper()
	if _, err := exec.LookPath("git-upload-pack"); err != nil {
		t.Fatalf("the SSH tests need git-upload-pack from the git package: %v", err)
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) != string(clientKey.Marshal()) {
				return nil, errors.New("unknown client key")
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshRemote{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(conn, cfg)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sshRemote) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sshRemote) serve(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return // e.g. the client refused our host key: that is what one test wants
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.session(ch, chReqs)
	}
}

// session runs the one "exec git-upload-pack '<path>'" a git client sends.
func (s *sshRemote) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			return
		}
		repoPath, ok := strings.CutPrefix(payload.Command, "git-upload-pack ")
		if !ok {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.Command("git-upload-pack", strings.Trim(repoPath, "'"))
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		return
	}
}

func TestSSH(t *testing.T) {
	up := newUpstream(t)
	old := up.Commit("old", map[string]string{"app.yaml": configMap("app", "v0")})
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	dir := t.TempDir()

	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	writeFile(t, keyFile, string(pem.EncodeToMemory(block)))
	sshClientPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	srv := newSSHRemote(t, sshClientPub)

	known := filepath.Join(dir, "known_hosts")
	writeFile(t, known, knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostKey)+"\n")
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(otherPriv)
	wrong := filepath.Join(dir, "known_hosts_wrong")
	writeFile(t, wrong, knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, otherSigner.PublicKey())+"\n")
	unrelated := filepath.Join(dir, "known_hosts_unrelated")
	writeFile(t, unrelated, knownhosts.Line([]string{"[git.example.com]:2222"}, srv.hostKey)+"\n")

	url := "ssh://git@" + srv.addr + up.Bare
	for _, tc := range []struct {
		name    string
		auth    Auth
		wantErr error
	}{
		{"known host key", Auth{SSHKeyFile: keyFile, KnownHostsFile: known}, nil},
		{"insecure ignore host key", Auth{SSHKeyFile: keyFile, InsecureIgnoreHostKey: true}, nil},
		{"unknown host key", Auth{SSHKeyFile: keyFile, KnownHostsFile: unrelated}, ErrUnknownHostKey},
		{"changed host key", Auth{SSHKeyFile: keyFile, KnownHostsFile: wrong}, ErrHostKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openRepo(t, Source{URL: url, Auth: tc.auth}, t.TempDir())
			_, err := r.Head(context.Background())
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Head: %v", err)
				}
				if d := fetchAndLoad(t, r); d.Revision.Commit != c1 {
					t.Errorf("loaded %s, want %s", d.Revision.Commit, c1)
				}
				assertNotFetched(t, r, old)
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Head: %v, want %v", err, tc.wantErr)
			}
			t.Logf("as reported: %v", err)
			if _, err := r.Fetch(context.Background()); !errors.Is(err, tc.wantErr) {
				t.Errorf("Fetch: %v, want %v", err, tc.wantErr)
			}
		})
	}
}
