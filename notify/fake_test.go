package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The fakes below answer as the real APIs do (status codes, bodies, and GitLab's state
// machine) and check every request as the real APIs would, recording what they got.

var shaPath = regexp.MustCompile(`^[0-9a-f]{40}$`)

// fakeGitHub is GitHub's "create a commit status" endpoint for one repository.
type fakeGitHub struct {
	t     *testing.T
	token string
	repo  string
	mu    sync.Mutex
	got   []map[string]any
}

func newFakeGitHub(t *testing.T, repo, token string) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, token: token, repo: repo}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	sha, ok := strings.CutPrefix(r.URL.Path, "/repos/"+f.repo+"/statuses/")
	if r.Method != http.MethodPost || !ok || !shaPath.MatchString(sha) {
		f.t.Errorf("github: %s %s: want POST /repos/%s/statuses/SHA", r.Method, r.URL.Path, f.repo)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}`)
		return
	}
	for k, want := range map[string]string{"Accept": "application/vnd.github+json", "User-Agent": "shoal", "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"} {
		if got := r.Header.Get(k); got != want {
			f.t.Errorf("github: header %s = %q, want %q", k, got, want)
		}
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"Problems parsing JSON"}`)
		return
	}
	state, _ := body["state"].(string)
	desc, _ := body["description"].(string)
	if !slices.Contains([]string{"pending", "success", "failure", "error"}, state) || utf8.RuneCountInString(desc) > 140 {
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","field":"state"}],"status":"422"}`)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, body)
	id := len(f.got)
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"url":"https://api.github.com/repos/%s/statuses/%s","id":%d,"state":%q,"description":%q,"target_url":%q,"context":%q,"created_at":"2026-12-02T14:00:00Z"}`,
		f.repo, sha, id, state, desc, body["target_url"], body["context"])
}

func (f *fakeGitHub) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// fakeGitLab is GitLab's "set the pipeline status of a commit" endpoint for one project,
// with its state machine: a status that is still pending or running is updated in place,
// and one that cannot move to the new state answers 400.
type fakeGitLab struct {
	t       *testing.T
	token   string
	escaped string // the project as it must appear in the path
	mu      sync.Mutex
	live    map[string]string // sha/name → pending or running
	got     []map[string]any
}

func newFakeGitLab(t *testing.T, escapedProject, token string) (*fakeGitLab, *httptest.Server) {
	f := &fakeGitLab{t: t, token: token, escaped: escapedProject, live: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// gitlabEvents is the state machine event each state takes, and the states it leaves.
var gitlabEvents = map[string]struct {
	event string
	from  []string
}{
	"pending":  {"enqueue", []string{"created"}},
	"running":  {"run", []string{"created", "pending"}},
	"success":  {"succeed", []string{"created", "pending", "running"}},
	"failed":   {"drop", []string{"created", "pending", "running"}},
	"canceled": {"cancel", []string{"created", "pending", "running"}},
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	sha, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v4/projects/"+f.escaped+"/statuses/")
	if r.Method != http.MethodPost || !ok || !shaPath.MatchString(sha) {
		f.t.Errorf("gitlab: %s %s: want POST /api/v4/projects/%s/statuses/SHA", r.Method, r.URL.EscapedPath(), f.escaped)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"404 Project Not Found"}`)
		return
	}
	if r.Header.Get("Authorization") != "" || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("gitlab: headers %v", r.Header)
	}
	if r.Header.Get("PRIVATE-TOKEN") != f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"401 Unauthorized"}`)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"body is invalid"}`)
		return
	}
	state, _ := body["state"].(string)
	name, _ := body["name"].(string)
	ev, known := gitlabEvents[state]
	if !known {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"state does not have a valid value"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := sha + "/" + name
	from := "created"
	if cur, ok := f.live[key]; ok {
		from = cur
	}
	if !slices.Contains(ev.from, from) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")"}`, ev.event, from, ev.event)
		return
	}
	delete(f.live, key)
	if state == "pending" || state == "running" {
		f.live[key] = state
	}
	f.got = append(f.got, body)
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":%d,"sha":%q,"ref":"main","status":%q,"name":%q,"target_url":null,"description":null,"allow_failure":false}`, len(f.got), sha, state, name)
}

func (f *fakeGitLab) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// receiver is a webhook receiver that checks the signature as a real one must.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []payload
	header []http.Header
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, secret: []byte(secret)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !VerifySignature(rc.secret, body, r.Header.Get("X-Shoal-Signature-256")) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "bad signature")
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("webhook body %s: %v", body, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, p)
	rc.header = append(rc.header, r.Header.Clone())
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
