package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/spec"
)

// What an attacker with a commit, or a container, can make the CLI print: an escape that
// retitles the terminal, one that clears the screen, and a carriage return that hides
// the start of a line (CVE-2021-25743 in kubectl is the same class).
const hostile = "\x1b]0;pwned\x07\x1b[2J\rfake line\u009b31m"

// fakeAgent answers /status, /logs and /explain with text carrying escape sequences.
func fakeAgent(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(agent.Status{
			Node: "n1", Time: time.Now(),
			Desired: &spec.Revision{Commit: strings.Repeat("a", 40), Message: "deploy " + hostile, Author: "mallory" + hostile},
			Workloads: []agent.WorkloadStatus{{Namespace: "default", Name: "app", Replicas: 1,
				Instances: []agent.InstanceStatus{{ID: "app-1", Node: "n1", Phase: "Failed", Message: "exit: " + hostile}}}},
		})
	})
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("[app-1/main] hello " + hostile + "\n"))
	})
	mux.HandleFunc("GET /explain", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unknown workload "+hostile, http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestCLIEscapesTerminalControls(t *testing.T) {
	addr := fakeAgent(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status", "--addr", addr}},
		{"status json", []string{"status", "--addr", addr, "-o", "json"}},
		{"logs", []string{"logs", "app", "--addr", addr}},
		{"explain error", []string{"explain", "app", "--addr", addr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, out, errOut := shoal(t, tc.args...)
			for _, s := range []string{out, errOut} {
				if strings.ContainsAny(s, "\x1b\x07\r\u009b") {
					t.Errorf("printed a raw control character: %q", s)
				}
			}
			if !strings.Contains(out+errOut, `\u001b]0;pwned\u0007`) {
				t.Errorf("escape not shown visibly: stdout %q stderr %q", out, errOut)
			}
		})
	}
	// --raw is the way to get the bytes as they are.
	if _, out, _ := shoal(t, "logs", "app", "--addr", addr, "--raw"); !strings.Contains(out, hostile) {
		t.Errorf("logs --raw: %q, want the bytes unchanged", out)
	}
}
