package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	rolloutSHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	newerSHA   = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c"
)

// answer is one response of a scripted agent: a rollout report (200), or a status code
// with a body.
type answer struct {
	report *rolloutReport
	code   int
	body   string
}

// scriptedAgent serves GET /rollouts with its answers in turn, the last one again and
// again, and records the queries it was asked.
type scriptedAgent struct {
	mu      sync.Mutex
	answers []answer
	queries []string
}

func (a *scriptedAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Path != "/rollouts" {
		http.NotFound(w, r)
		return
	}
	a.queries = append(a.queries, r.URL.RawQuery)
	next := a.answers[0]
	if len(a.answers) > 1 {
		a.answers = a.answers[1:]
	}
	if next.report == nil {
		w.WriteHeader(next.code)
		w.Write([]byte(next.body))
		return
	}
	json.NewEncoder(w).Encode(next.report)
}

func (a *scriptedAgent) asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.queries
}

// rolloutAt is a report on rolloutSHA in state with nodes applied/total and workloads.
func rolloutAt(state string, applied, total int, workloads ...workloadRollout) answer {
	return answer{report: &rolloutReport{Commit: rolloutSHA, Message: "web: nginx 1.27\n\nbody", State: state,
		Nodes: rolloutNodes{Total: total, Applied: applied}, Workloads: workloads}}
}

// withReason is a with the rollout's reason.
func withReason(a answer, reason string) answer {
	a.report.Reason = reason
	return a
}

func webRollout(state string, updated, ready, old int, detail string) workloadRollout {
	wl := workloadRollout{Namespace: "default", Name: "web", State: state, Replicas: 3, Updated: updated, Ready: ready, Old: old}
	if state == "failed" || state == "reverted" {
		wl.Reason = detail
	} else {
		wl.Waiting = detail
	}
	return wl
}

func apiRollout(state string) workloadRollout {
	return workloadRollout{Namespace: "default", Name: "api", State: state, Replicas: 2, Updated: 2, Ready: 2}
}

const notFetched = `{"error": "no commit 1a2b3c4 fetched yet"}`

// rolloutCLI keeps the tests away from a token of an agent on the test machine and
// shortens the unreachable window to limit.
func rolloutCLI(t *testing.T, limit time.Duration) {
	saved, savedLimit := defaultTokenFile, agentUnreachableLimit
	t.Cleanup(func() { defaultTokenFile, agentUnreachableLimit = saved, savedLimit })
	defaultTokenFile = filepath.Join(t.TempDir(), "api-token")
	agentUnreachableLimit = limit
	t.Setenv("SHOAL_TOKEN", "")
	t.Setenv("SHOAL_TOKEN_FILE", "")
}

func TestRolloutStatus(t *testing.T) {
	rolloutCLI(t, time.Minute)
	for _, tc := range []struct {
		name     string
		args     []string
		script   []answer
		wantCode int
		wantOut  []string // lines or parts of lines of stdout, each to be printed once
		wantErr  string
		notOut   []string
	}{
		{
			name: "success, progress printed as it changes",
			script: []answer{
				rolloutAt("pending", 0, 3),
				rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, "waiting for web-1a2b3c4d5e-1 to become ready"), apiRollout("unchanged")),
				rolloutAt("progressing", 2, 3, webRollout("progressing", 2, 2, 1, "waiting for web-1a2b3c4d5e-2 to become ready"), apiRollout("unchanged")),
				rolloutAt("progressing", 2, 3, webRollout("progressing", 2, 2, 1, "waiting for web-1a2b3c4d5e-2 to become ready"), apiRollout("unchanged")),
				rolloutAt("succeeded", 3, 3, webRollout("succeeded", 3, 3, 0, ""), apiRollout("unchanged")),
			},
			wantOut: []string{
				"rollout of 1a2b3c4d5e6f (web: nginx 1.27): pending\n",
				"rollout of 1a2b3c4d5e6f (web: nginx 1.27): progressing\n",
				"nodes: 1/3 applied\n",
				"nodes: 2/3 applied\n",
				"default/web: progressing, 1/3 updated, 1 ready, 2 old — waiting for web-1a2b3c4d5e-1 to become ready\n",
				"default/web: progressing, 2/3 updated, 2 ready, 1 old — waiting for web-1a2b3c4d5e-2 to become ready\n",
				"default/web: succeeded, 3/3 updated, 3 ready\n",
				"rollout of 1a2b3c4d5e6f succeeded on 3/3 nodes, after ",
			},
			notOut: []string{"default/api"},
		},
		{
			name: "failure with the reason",
			args: []string{"--commit", "1A2B3C4"},
			script: []answer{
				rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 0, 2, "waiting for web-1a2b3c4d5e-0 to become ready")),
				withReason(rolloutAt("failed", 1, 3, webRollout("reverted", 0, 3, 3, "3 restarts of web-1a2b3c4d5e-0: exit 1")),
					"default/web: 3 restarts of web-1a2b3c4d5e-0: exit 1; reverted to 0f3e"),
			},
			wantCode: exitFindings,
			wantOut:  []string{"default/web: reverted, 0/3 updated, 3 ready, 3 old — 3 restarts of web-1a2b3c4d5e-0: exit 1\n"},
			wantErr:  "shoal: rollout of 1a2b3c4d5e6f failed: default/web: 3 restarts of web-1a2b3c4d5e-0: exit 1; reverted to 0f3e\n",
		},
		{
			name: "a rejected commit: its errors",
			script: []answer{{report: &rolloutReport{Commit: rolloutSHA, State: "failed", Reason: "invalid manifests",
				Errors: []string{"web.yaml:3: metadata.name: must be a DNS label", "svc.yaml:8: spec.ports[0].port: must be 1-65535"}}}},
			wantCode: exitFindings,
			wantOut:  []string{"  web.yaml:3: metadata.name: must be a DNS label\n", "  svc.yaml:8: spec.ports[0].port: must be 1-65535\n"},
			wantErr:  "rollout of 1a2b3c4d5e6f failed: invalid manifests",
		},
		{
			name:    "one workload reverted while following another",
			args:    []string{"default/api"},
			script:  []answer{rolloutAt("progressing", 3, 3, webRollout("reverted", 0, 3, 3, "3 restarts"), apiRollout("succeeded"))},
			wantOut: []string{"default/api: succeeded, 2/2 updated, 2 ready\n", "default/api at 1a2b3c4d5e6f succeeded on 3/3 nodes, after "},
			notOut:  []string{"default/web"},
		},
		{
			name:     "the workload followed reverted while others progress",
			args:     []string{"web"},
			script:   []answer{rolloutAt("progressing", 2, 3, webRollout("reverted", 0, 3, 3, "3 restarts of web-1a2b3c4d5e-0: exit 1"), apiRollout("progressing"))},
			wantCode: exitFindings,
			wantErr:  "default/web at 1a2b3c4d5e6f reverted: 3 restarts of web-1a2b3c4d5e-0: exit 1",
			notOut:   []string{"default/api"},
		},
		{
			name: "the workload followed done, but not yet applied by every node",
			args: []string{"api"},
			script: []answer{
				rolloutAt("progressing", 2, 3, apiRollout("succeeded")),
				rolloutAt("progressing", 3, 3, apiRollout("succeeded")),
			},
			wantOut: []string{"nodes: 2/3 applied\n", "nodes: 3/3 applied\n", "default/api at 1a2b3c4d5e6f succeeded on 3/3 nodes"},
		},
		{
			name: "superseded",
			script: []answer{
				rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, "")),
				{report: &rolloutReport{Commit: rolloutSHA, State: "superseded", SupersededBy: newerSHA, Nodes: rolloutNodes{Total: 3, Applied: 1}}},
			},
			wantCode: exitTrouble,
			wantErr:  "rollout of 1a2b3c4d5e6f superseded by 9f8e7d6c5b4a before it finished; run shoal rollout status --commit 9f8e7d6c5b4a\n",
		},
		{
			name:     "timeout",
			args:     []string{"--timeout", "50ms"},
			script:   []answer{rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, "waiting for web-1a2b3c4d5e-1 to become ready"))},
			wantCode: exitTrouble,
			wantOut:  []string{"default/web: progressing, 1/3 updated"},
			wantErr:  "timed out after 50ms: rollout of 1a2b3c4d5e6f still progressing, nodes 1/3 applied\n",
		},
		{
			name:     "timeout, following a workload",
			args:     []string{"--timeout", "50ms", "web"},
			script:   []answer{rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, "waiting for web-1a2b3c4d5e-1 to become ready"))},
			wantCode: exitTrouble,
			wantErr:  "still progressing, nodes 1/3 applied; default/web: progressing, 1/3 updated, 1 ready, 2 old — waiting for web-1a2b3c4d5e-1 to become ready\n",
		},
		{
			name:    "404 until the agent fetched the commit",
			args:    []string{"--commit", "1a2b3c4"},
			script:  []answer{{code: 404, body: notFetched}, {code: 404, body: notFetched}, {code: 404, body: notFetched}, rolloutAt("succeeded", 3, 3)},
			wantOut: []string{"waiting for the agent to fetch 1a2b3c4\n", "rollout of 1a2b3c4d5e6f succeeded on 3/3 nodes"},
		},
		{
			name:     "never fetched",
			args:     []string{"--commit", "1a2b3c4", "--timeout", "50ms"},
			script:   []answer{{code: 404, body: notFetched}},
			wantCode: exitTrouble,
			wantOut:  []string{"waiting for the agent to fetch 1a2b3c4\n"},
			wantErr:  "timed out after 50ms: the agent has not fetched 1a2b3c4: agent at",
		},
		{
			name:    "the agent restarts: 503 is retried",
			script:  []answer{{code: 503, body: "restarting"}, {code: 503, body: "restarting"}, rolloutAt("succeeded", 3, 3)},
			wantOut: []string{"agent unreachable, retrying for up to 1m0s: agent at", "rollout of 1a2b3c4d5e6f succeeded"},
		},
		{
			name:     "an agent without GET /rollouts",
			script:   []answer{{code: 404, body: "404 page not found"}},
			wantCode: exitTrouble,
			wantErr:  "the agent does not serve GET /rollouts",
			notOut:   []string{"waiting"},
		},
		{
			name:     "refused: no retry",
			script:   []answer{{code: 401, body: "unauthorized"}},
			wantCode: exitTrouble,
			wantErr:  "401 Unauthorized",
		},
		{
			name:     "DEPLOYMENT of two namespaces",
			args:     []string{"web"},
			script:   []answer{rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, ""), workloadRollout{Namespace: "shop", Name: "web", State: "progressing"})},
			wantCode: exitTrouble,
			wantErr:  "DEPLOYMENT web names 2 workloads (default/web, shop/web): give namespace/name",
		},
		{
			name:     "DEPLOYMENT not in the commit",
			args:     []string{"default/wbe"},
			script:   []answer{rolloutAt("succeeded", 3, 3, webRollout("succeeded", 3, 3, 0, ""))},
			wantCode: exitTrouble,
			wantErr:  "commit 1a2b3c4d5e6f has no workload default/wbe",
		},
		// The agent's answers are checked, not trusted.
		{
			name:     "an answer for another commit",
			args:     []string{"--commit", "1a2b3c4"},
			script:   []answer{{report: &rolloutReport{Commit: newerSHA, State: "succeeded"}}},
			wantCode: exitTrouble,
			wantErr:  `answered for commit "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c" when asked for "1a2b3c4"`,
		},
		{
			name:     "not a full commit",
			script:   []answer{{report: &rolloutReport{Commit: "1a2b3c4", State: "succeeded"}}},
			wantCode: exitTrouble,
			wantErr:  `answered for commit "1a2b3c4" when asked for "the newest"`,
		},
		{
			name:     "a huge commit is cut short in the error",
			script:   []answer{{report: &rolloutReport{Commit: strings.Repeat("a", 1<<16), State: "succeeded"}}},
			wantCode: exitTrouble,
			wantErr:  `answered for commit "` + strings.Repeat("a", 80) + `" when asked for`,
		},
		{
			name:     "a state the CLI does not know",
			script:   []answer{rolloutAt("done", 3, 3)},
			wantCode: exitTrouble,
			wantErr:  `"done", a state this CLI does not know`,
		},
		{
			name:     "not JSON",
			args:     []string{"--timeout", "50ms"},
			script:   []answer{{code: 200, body: "<html>"}},
			wantCode: exitTrouble,
			wantErr:  "invalid character '<'",
		},
		{
			name:     "escape sequences in the reason",
			script:   []answer{{report: &rolloutReport{Commit: rolloutSHA, State: "failed", Reason: "boom\x1b[2J\rok"}}},
			wantCode: exitFindings,
			wantErr:  `failed: boom\u001b[2J\u000dok`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent := &scriptedAgent{answers: tc.script}
			srv := httptest.NewServer(agent)
			defer srv.Close()
			args := append([]string{"rollout", "status", "--addr", srv.URL, "--interval", "1ms"}, tc.args...)
			code, out, errOut := shoal(t, args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) || (tc.wantErr == "" && errOut != "") {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
			for _, want := range tc.wantOut {
				if n := strings.Count(out, want); n != 1 {
					t.Errorf("stdout has %q %d times, want once:\n%s", want, n, out)
				}
			}
			for _, not := range tc.notOut {
				if strings.Contains(out, not) {
					t.Errorf("stdout has %q:\n%s", not, out)
				}
			}
			for _, line := range strings.SplitAfter(out, "\n") {
				if _, err := time.Parse("15:04:05 ", line[:min(len(line), 9)]); line != "" && err != nil {
					t.Errorf("line %q does not start with the time of day", line)
				}
			}
		})
	}
}

// Once the agent names the commit, the CLI asks for that commit only: a newer commit
// does not take over the question.
func TestRolloutStatusFollowsTheCommitFirstNamed(t *testing.T) {
	rolloutCLI(t, time.Minute)
	agent := &scriptedAgent{answers: []answer{rolloutAt("progressing", 1, 3), rolloutAt("succeeded", 3, 3)}}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	if code, out, errOut := shoal(t, "rollout", "status", "--addr", srv.URL, "--interval", "1ms"); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if q := agent.asked(); len(q) != 2 || q[0] != "" || q[1] != "commit="+rolloutSHA {
		t.Errorf("queries %q, want none, then commit=%s", q, rolloutSHA)
	}
}

func TestRolloutStatusAgentDown(t *testing.T) {
	rolloutCLI(t, 20*time.Millisecond)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	code, out, errOut := shoal(t, "rollout", "status", "--addr", srv.URL, "--interval", "1ms")
	if code != exitTrouble || !strings.Contains(errOut, "shoal: agent unreachable for 20ms: ") || !strings.Contains(errOut, "connection refused") {
		t.Errorf("exit %d, stderr %q; want 2 and the connection error", code, errOut)
	}
	if strings.Count(out, "agent unreachable, retrying for up to 20ms") != 1 {
		t.Errorf("stdout %q: want one line saying the CLI retries", out)
	}
}

func TestRolloutStatusJSON(t *testing.T) {
	rolloutCLI(t, time.Minute)
	agent := &scriptedAgent{answers: []answer{{code: 404, body: notFetched}, rolloutAt("progressing", 1, 3, webRollout("progressing", 1, 1, 2, "")),
		rolloutAt("failed", 1, 3, webRollout("reverted", 0, 3, 3, "3 restarts"))}}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	code, out, errOut := shoal(t, "rollout", "status", "--addr", srv.URL, "--interval", "1ms", "-o", "json")
	var got rolloutReport
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitFindings || !strings.Contains(errOut, "failed") {
		t.Fatalf("exit %d, %v, stderr %q: want 1 and one JSON document:\n%s", code, err, errOut, out)
	}
	if got.State != "failed" || len(got.Workloads) != 1 || got.Workloads[0].Reason != "3 restarts" {
		t.Errorf("document %+v, want the final one", got)
	}
}

func TestRolloutStatusRefusesBadArguments(t *testing.T) {
	rolloutCLI(t, time.Minute)
	agent := &scriptedAgent{answers: []answer{rolloutAt("succeeded", 3, 3)}}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--commit", "1a2b3c"}, "prefix of it of 7 or more hex digits"},
		{[]string{"--commit", "main"}, "want a commit SHA"},
		{[]string{"--timeout", "-1s"}, "--timeout -1s"},
		{[]string{"--interval", "0s"}, "positive interval"},
		{[]string{"-o", "yaml"}, `-o "yaml"`},
		{[]string{"a/b/c"}, `DEPLOYMENT "a/b/c"`},
		{[]string{"default/"}, `DEPLOYMENT "default/"`},
		{[]string{"/web"}, `DEPLOYMENT "/web"`},
		{[]string{"web", "api"}, "accepts at most 1 arg"},
		{[]string{"--timeout", "soon"}, "invalid argument"},
	} {
		code, _, errOut := shoal(t, append([]string{"rollout", "status", "--addr", srv.URL}, tc.args...)...)
		if code != exitTrouble || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.wantErr)
		}
	}
	if q := agent.asked(); len(q) != 0 {
		t.Errorf("bad arguments reached the agent: %q", q)
	}
}
