package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{
			name: "defaults",
			want: config{listen: ":8080", message: "hello", version: "dev", exitCode: 1},
		},
		{
			name: "PORT",
			env:  map[string]string{"PORT": "9000", "VERSION": "v2", "MESSAGE": "hi"},
			want: config{listen: ":9000", message: "hi", version: "v2", exitCode: 1},
		},
		{
			name: "LISTEN wins over PORT",
			env:  map[string]string{"PORT": "9000", "LISTEN": "127.0.0.1:7000"},
			want: config{listen: "127.0.0.1:7000", message: "hello", version: "dev", exitCode: 1},
		},
		{
			name: "knobs",
			env: map[string]string{"EXIT_AFTER": "150ms", "EXIT_CODE": "3", "ALLOC_MB": "64",
				"IGNORE_SIGTERM": "1", "READY_FILE": "/tmp/r", "LOG_EVERY": "1s"},
			want: config{listen: ":8080", message: "hello", version: "dev", exitAfter: 150 * time.Millisecond,
				exitCode: 3, allocMB: 64, ignoreSIGTERM: true, readyFile: "/tmp/r", logEvery: time.Second},
		},
		{
			name:    "bad values are all reported",
			env:     map[string]string{"EXIT_AFTER": "soon", "ALLOC_MB": "lots"},
			wantErr: `EXIT_AFTER="soon"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ALLOC_MB") {
					t.Fatalf("err = %v, want one naming %s and ALLOC_MB", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	t.Setenv("HELLO_TEST_VAR", "from-env")
	var failing atomic.Bool
	srv := httptest.NewServer(newHandler(config{message: "hi", version: "v7", readyFile: ready}, &failing))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		do       func()
		path     string
		wantCode int
		wantBody string
	}{
		{path: "/", wantCode: 200, wantBody: "hi (version v7)\n"},
		{path: "/healthz", wantCode: 200, wantBody: "ok\n"},
		{path: "/readyz", wantCode: 500}, // no ready file yet
		{do: func() { os.WriteFile(ready, nil, 0o600) }, path: "/readyz", wantCode: 200},
		{path: "/fail", wantCode: 200},
		{path: "/healthz", wantCode: 500},
		{path: "/readyz", wantCode: 500},
		{path: "/recover", wantCode: 200},
		{path: "/healthz", wantCode: 200},
		{do: func() { failing.Store(true) }, path: "/healthz", wantCode: 500}, // what SIGUSR1 does
		{do: func() { failing.Store(false) }, path: "/healthz", wantCode: 200},
		{path: "/env/HELLO_TEST_VAR", wantCode: 200, wantBody: "from-env"},
		{path: "/env/HELLO_NO_SUCH_VAR", wantCode: 404},
		{do: func() { os.WriteFile(ready, []byte("content"), 0o600) }, path: "/file?path=" + ready, wantCode: 200, wantBody: "content"},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		code, body := get(s.path)
		if code != s.wantCode || s.wantBody != "" && body != s.wantBody {
			t.Errorf("GET %s = %d %q, want %d %q", s.path, code, body, s.wantCode, s.wantBody)
		}
	}
}

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.Error(w, "failing", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	tests := []struct {
		url  string
		want int
	}{
		{srv.URL + "/ok", 0},
		{srv.URL + "/moved", 0},
		{srv.URL + "/fail", 1},
		{closed.URL + "/ok", 1}, // connection refused
		{"not a url", 1},
	}
	for _, tt := range tests {
		if got := check(client, tt.url); got != tt.want {
			t.Errorf("check(%s) = %d, want %d", tt.url, got, tt.want)
		}
	}
}
