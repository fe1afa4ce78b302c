package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/agent"
)

// rolloutReport is the agent's account of one commit's rollout across the cluster, as
// GET /rollouts serves it; workloadRollout one workload's part in it.
type (
	rolloutReport   = agent.CommitStatus
	rolloutNodes    = agent.CommitNodes
	workloadRollout = agent.WorkloadRollout
)

// The states that end the wait, with the exit code they end it with; the others may still
// change. A superseded commit neither failed nor succeeded: the caller should follow the
// commit that replaced it, so it ends as trouble (2) rather than as a verdict.
var (
	rolloutExit   = map[string]int{"succeeded": 0, "failed": exitFindings, "superseded": exitTrouble}
	rolloutStates = map[string]bool{"pending": true, "progressing": true, "succeeded": true, "failed": true, "superseded": true}
	// workloadExit: with a DEPLOYMENT, its own state decides as soon as it is final.
	workloadExit = map[string]int{"succeeded": 0, "unchanged": 0, "failed": exitFindings, "reverted": exitFindings}
)

// agentUnreachableLimit is how long `rollout status` keeps retrying an agent it cannot
// reach (it may be restarting) before it gives up. Tests shorten it.
var agentUnreachableLimit = 30 * time.Second

var (
	// shortCommit is what --commit takes: an abbreviated or full SHA-1 or SHA-256.
	shortCommit = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	// fullCommit is what the agent must answer with.
	fullCommit = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

func newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Follow the rollout of a commit",
	}
	cmd.AddCommand(newRolloutStatusCommand())
	return cmd
}

func newRolloutStatusCommand() *cobra.Command {
	var (
		addr, output, commit string
		timeout, interval    time.Duration
		api                  apiClientFlags
	)
	cmd := &cobra.Command{
		Use:   "status [DEPLOYMENT]",
		Short: "Wait until a commit serves on every node; exit 0, 1 if it failed, 2 otherwise",
		Long: `Rollout status asks an agent (--addr) how the rollout of a commit (--commit, default: the
newest the agent knows) goes, every --interval, and prints what changed until the commit
serves on every alive node, fails, or --timeout passes. With DEPLOYMENT (name or
namespace/name) only that workload matters: it ends once the workload has succeeded (or
did not change) and every alive node applied the commit, or when it failed.

Exit status: 0 the commit serves everywhere; 1 it failed or was reverted (the reason is
printed); 2 trouble: timeout, a newer commit superseded it before it finished, the agent
unreachable for 30s or never fetched the commit, bad arguments. So a pipeline can run

  git push && shoal rollout status --commit $(git rev-parse HEAD)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := &rolloutWatch{commit: strings.ToLower(commit), interval: interval, timeout: timeout,
				unreachable: agentUnreachableLimit, printed: map[string]string{}}
			if len(args) == 1 {
				w.workload = args[0]
			}
			if err := w.validate(output); err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			if output == "text" {
				w.out = cmd.OutOrStdout()
			}
			var err error
			if w.client, err = api.client(addr); err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			raw, err := w.run(cmd.Context())
			if output == "json" && raw != nil {
				if _, werr := cmd.OutOrStdout().Write(raw); werr != nil && err == nil {
					err = werr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAgentAddr, agentAddrUsage)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text (progress as it changes) or json (the final document only)")
	cmd.Flags().StringVar(&commit, "commit", "", "the commit to follow: a SHA or a prefix of 7 or more hex digits (default: the newest the agent knows)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up (exit 2) after this long; 0: never")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to ask the agent")
	api.register(cmd.Flags())
	return cmd
}

// rolloutWatch follows one commit's rollout until it ends.
type rolloutWatch struct {
	client   *apiClient
	commit   string // as given (maybe empty or a prefix), then the full SHA the agent named
	workload string // DEPLOYMENT: "name" or "namespace/name"; empty for the whole commit
	interval time.Duration
	timeout  time.Duration // 0: none
	// unreachable is how long the agent may fail to answer before the watch gives up.
	unreachable time.Duration
	out         io.Writer         // progress; nil with -o json
	printed     map[string]string // the last line printed for each thing shown
	start       time.Time
}

func (w *rolloutWatch) validate(output string) error {
	if output != "text" && output != "json" {
		return fmt.Errorf("-o %q: want text or json", output)
	}
	if w.commit != "" && !shortCommit.MatchString(w.commit) {
		return fmt.Errorf("--commit %q: want a commit SHA, or a prefix of it of 7 or more hex digits", w.commit)
	}
	if w.timeout < 0 || w.interval <= 0 {
		return fmt.Errorf("--timeout %s, --interval %s: want a timeout of 0 (none) or more and a positive interval", w.timeout, w.interval)
	}
	if w.workload != "" {
		ns, name, qualified := strings.Cut(w.workload, "/")
		if ns == "" || (qualified && name == "") || strings.Contains(name, "/") {
			return fmt.Errorf("DEPLOYMENT %q: want name or namespace/name", w.workload)
		}
	}
	return nil
}

// run polls the agent until the rollout ends, and returns the last document the agent
// sent (nil if none) and the outcome: nil for success, or an *exitError.
func (w *rolloutWatch) run(ctx context.Context) ([]byte, error) {
	w.start = time.Now()
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	var (
		raw       []byte
		last      *rolloutReport
		lastErr   error     // why the last poll had no document
		downSince time.Time // when the agent stopped answering; zero while it answers
		notFound  bool      // the agent answered 404 for the commit at least once
	)
	for {
		var r rolloutReport
		body, err := w.client.getJSON(ctx, w.path(), &r)
		var se *statusError
		switch {
		case err == nil:
			downSince, lastErr = time.Time{}, nil
			if err := w.pin(&r); err != nil {
				return raw, &exitError{code: exitTrouble, err: err}
			}
			raw, last = body, &r
			w.report(&r)
			if o, done := w.verdict(&r); done {
				return raw, w.end(&r, o)
			}
		case ctx.Err() != nil:
			// Timed out during the request: said below.
		case errors.As(err, &se) && se.code == http.StatusNotFound:
			downSince, lastErr = time.Time{}, err
			if !agentError(se.body) {
				return raw, &exitError{code: exitTrouble, err: fmt.Errorf("%w\nthe agent does not serve GET /rollouts: is it older than this CLI?", err)}
			}
			if !notFound {
				notFound = true
				w.printf("waiting for the agent to fetch %s", cmp.Or(w.commit, "a commit"))
			}
		case errors.As(err, &se) && se.code < 500 && se.code != http.StatusTooManyRequests:
			return raw, &exitError{code: exitTrouble, err: err} // retrying would not help: 401, 400, …
		default:
			lastErr = err
			if downSince.IsZero() {
				downSince = time.Now()
				w.printf("agent unreachable, retrying for up to %s: %v", w.unreachable, err)
			}
			if time.Since(downSince) >= w.unreachable {
				return raw, &exitError{code: exitTrouble, err: fmt.Errorf("agent unreachable for %s: %w", w.unreachable, err)}
			}
		}
		select {
		case <-ctx.Done():
			return raw, &exitError{code: exitTrouble, err: w.timedOut(last, lastErr, notFound)}
		case <-time.After(w.interval):
		}
	}
}

func (w *rolloutWatch) path() string {
	if w.commit == "" {
		return "/rollouts"
	}
	return "/rollouts?" + url.Values{"commit": {w.commit}}.Encode()
}

// agentError reports whether body is the agent's JSON error document, which a 404 from
// an agent without GET /rollouts is not.
func agentError(body string) bool {
	var doc struct {
		Error string `json:"error"`
	}
	return json.Unmarshal([]byte(body), &doc) == nil && doc.Error != ""
}

// pin checks that the agent answered for the commit asked for, and follows that full
// commit from then on, lest a newer commit take over the question halfway.
func (w *rolloutWatch) pin(r *rolloutReport) error {
	if !fullCommit.MatchString(r.Commit) || !strings.HasPrefix(r.Commit, w.commit) {
		return fmt.Errorf("agent at %s answered for commit %.80q when asked for %q", w.client.base, r.Commit, cmp.Or(w.commit, "the newest"))
	}
	if !rolloutStates[r.State] {
		return fmt.Errorf("agent at %s says the rollout of %s is %.40q, a state this CLI does not know: is the CLI older than the agent?", w.client.base, short(r.Commit), r.State)
	}
	w.commit = r.Commit
	return nil
}

// outcome is how the wait ended: the exit code and what to say.
type outcome struct {
	code    int
	subject string // "rollout of 0123456789ab" or "default/web at 0123456789ab"
	state   string // the final state of the subject
	reason  string
	err     error // the report shows the arguments wrong (exit 2)
}

// verdict says whether r ends the wait, and how.
func (w *rolloutWatch) verdict(r *rolloutReport) (outcome, bool) {
	if w.workload != "" {
		wl, err := w.find(r)
		if err != nil {
			return outcome{code: exitTrouble, err: err}, true
		}
		if wl != nil {
			code, final := workloadExit[wl.State]
			if final && (code != 0 || r.Nodes.Total > 0 && r.Nodes.Applied >= r.Nodes.Total) {
				subject := fmt.Sprintf("%s/%s at %s", wl.Namespace, wl.Name, short(r.Commit))
				return outcome{code: code, subject: subject, state: wl.State, reason: wl.Reason}, true
			}
		} else if r.State == "succeeded" {
			return outcome{code: exitTrouble, err: fmt.Errorf("commit %s has no workload %s", short(r.Commit), w.workload)}, true
		}
	}
	code, done := rolloutExit[r.State]
	return outcome{code: code, subject: "rollout of " + short(r.Commit), state: r.State, reason: r.Reason}, done
}

// find returns the workload DEPLOYMENT names, or nil if r has none of that name or no
// DEPLOYMENT was given.
func (w *rolloutWatch) find(r *rolloutReport) (*workloadRollout, error) {
	if w.workload == "" {
		return nil, nil
	}
	var found []*workloadRollout
	for i := range r.Workloads {
		if w.shows(&r.Workloads[i]) {
			found = append(found, &r.Workloads[i])
		}
	}
	if len(found) > 1 {
		var names []string
		for _, wl := range found {
			names = append(names, wl.Namespace+"/"+wl.Name)
		}
		return nil, fmt.Errorf("DEPLOYMENT %s names %d workloads (%s): give namespace/name", w.workload, len(found), strings.Join(names, ", "))
	}
	if len(found) == 0 {
		return nil, nil
	}
	return found[0], nil
}

// shows reports whether wl is the DEPLOYMENT followed, or with none, whether it takes part
// in the rollout (an unchanged workload says nothing about it).
func (w *rolloutWatch) shows(wl *workloadRollout) bool {
	if w.workload == "" {
		return wl.State != "unchanged"
	}
	ns, name, qualified := strings.Cut(w.workload, "/")
	if !qualified {
		return wl.Name == ns
	}
	return wl.Namespace == ns && wl.Name == name
}

// report prints the lines of r that differ from those printed before.
func (w *rolloutWatch) report(r *rolloutReport) {
	type line struct{ key, text string }
	title := "rollout of " + short(r.Commit)
	if msg := firstLine(r.Message); msg != "" {
		title += " (" + msg + ")"
	}
	lines := []line{{"rollout", title + ": " + r.State}}
	for i, e := range r.Errors {
		lines = append(lines, line{fmt.Sprint("error ", i), "  " + e})
	}
	if r.Nodes != (rolloutNodes{}) {
		lines = append(lines, line{"nodes", fmt.Sprintf("nodes: %d/%d applied", r.Nodes.Applied, r.Nodes.Total)})
	}
	for i := range r.Workloads {
		if wl := &r.Workloads[i]; w.shows(wl) {
			lines = append(lines, line{"workload " + wl.Namespace + "/" + wl.Name, progress(wl)})
		}
	}
	for _, l := range lines {
		if w.printed[l.key] != l.text {
			w.printed[l.key] = l.text
			w.printf("%s", l.text)
		}
	}
}

// progress is a workload's line, e.g. "default/web: progressing, 2/3 updated, 2 ready,
// 1 old — waiting for web-…-2 to become ready".
func progress(wl *workloadRollout) string {
	s := fmt.Sprintf("%s/%s: %s, %d/%d updated, %d ready", wl.Namespace, wl.Name, wl.State, wl.Updated, wl.Replicas, wl.Ready)
	if wl.Old > 0 {
		s += fmt.Sprintf(", %d old", wl.Old)
	}
	if detail := cmp.Or(wl.Reason, wl.Waiting); detail != "" {
		s += " — " + detail
	}
	return s
}

// end turns the outcome into the command's result: nil for success, which it prints, or
// an *exitError saying why not.
func (w *rolloutWatch) end(r *rolloutReport, o outcome) error {
	var err error
	switch {
	case o.err != nil:
		err = o.err
	case o.state == "superseded":
		next := cmp.Or(short(r.SupersededBy), "a newer commit")
		err = fmt.Errorf("%s superseded by %s before it finished; run shoal rollout status --commit %s", o.subject, next, cmp.Or(short(r.SupersededBy), "NEWER-SHA"))
	case o.code == 0:
		w.printf("%s %s on %d/%d nodes, after %s", o.subject, o.state, r.Nodes.Applied, r.Nodes.Total, time.Since(w.start).Round(time.Second))
		return nil
	case o.reason != "":
		err = fmt.Errorf("%s %s: %s", o.subject, o.state, o.reason)
	default:
		err = fmt.Errorf("%s %s", o.subject, o.state)
	}
	return &exitError{code: o.code, err: err}
}

// timedOut says where the rollout stood when the timeout passed.
func (w *rolloutWatch) timedOut(last *rolloutReport, lastErr error, notFound bool) error {
	where := fmt.Sprintf("timed out after %s", w.timeout)
	switch {
	case last != nil:
		where += fmt.Sprintf(": rollout of %s still %s, nodes %d/%d applied", short(last.Commit), last.State, last.Nodes.Applied, last.Nodes.Total)
		if wl, _ := w.find(last); wl != nil {
			where += "; " + progress(wl)
		}
	case notFound:
		where += fmt.Sprintf(": the agent has not fetched %s", cmp.Or(w.commit, "any commit"))
	}
	if lastErr != nil {
		return fmt.Errorf("%s: %w", where, lastErr)
	}
	return errors.New(where)
}

// printf prints a progress line, after the time of day, unless the output is JSON.
func (w *rolloutWatch) printf(format string, args ...any) {
	if w.out != nil {
		fmt.Fprintf(w.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}
