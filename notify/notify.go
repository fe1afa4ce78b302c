package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// State is a commit's fate as Shoal reports it.
type State string

// The states a Report may carry, in the order a commit usually passes through them.
const (
	// Pending: the commit is accepted and rolling out.
	Pending State = "pending"
	// Success: every workload the commit changed rolled out.
	Success State = "success"
	// Failure: the commit was rejected (invalid manifests) or its rollout failed.
	Failure State = "failure"
	// Superseded: a newer commit arrived before this one finished; it will not finish.
	Superseded State = "superseded"
)

// stateInfo is how one State reads in each sink.
type stateInfo struct {
	github, gitlab string // the API's state
	summary        string // the description when the Report has none
}

// states maps each State to its form per API. GitHub has no "cancelled", so a superseded
// commit is an "error" whose description says why; GitLab has "canceled".
var states = map[State]stateInfo{
	Pending:    {github: "pending", gitlab: "pending", summary: "Shoal is rolling this commit out"},
	Success:    {github: "success", gitlab: "success", summary: "Shoal rolled this commit out"},
	Failure:    {github: "failure", gitlab: "failed", summary: "Shoal could not roll this commit out"},
	Superseded: {github: "error", gitlab: "canceled", summary: "superseded by a newer commit"},
}

// Report is one transition of one commit.
type Report struct {
	Commit      string           // full SHA (40 or 64 lowercase hex digits)
	State       State            // the commit's state from now on
	Description string           // one line; sinks truncate it to their limit (GitHub 140 characters)
	Errors      []string         // for rejected commits, the first file:line errors; the webhook carries them, the others put the first in the description
	Workloads   []WorkloadResult // one per Deployment the commit changed
	Node        string           // the node that reports
	Time        time.Time        // when the transition happened; zero: when Send is called
}

// WorkloadResult is what a commit did to one Deployment.
type WorkloadResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Outcome   string `json:"outcome"` // "succeeded", "failed", "reverted" or "progressing"
	Reason    string `json:"reason"`  // why, for a failed or reverted one
}

// ID is the delivery's idempotency key: the hex SHA-256 of the commit, a NUL byte and
// the state. The same transition always has the same ID, so a receiver can drop a
// delivery it has already seen (a retry, or a second node reporting the same transition).
func (r Report) ID() string {
	sum := sha256.Sum256([]byte(r.Commit + "\x00" + string(r.State)))
	return hex.EncodeToString(sum[:])
}

// commitPattern is a full Git object name: SHA-1 or SHA-256, lowercase as Git prints it.
var commitPattern = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// validate refuses a report no sink could deliver; it goes into URLs, so it must be exact.
func (r Report) validate() error {
	if !commitPattern.MatchString(r.Commit) {
		return fmt.Errorf("report: commit %.80q is not a full lowercase hex SHA", r.Commit)
	}
	if _, ok := states[r.State]; !ok {
		return fmt.Errorf("report: unknown state %.40q", r.State)
	}
	return nil
}

// Sink delivers reports to one place. Send makes one attempt; the Notifier retries.
type Sink interface {
	// Name names the sink in errors: "github", "gitlab" or "webhook".
	Name() string
	// Send delivers r once. An error from a refused request says whether it is worth
	// retrying (see Notifier.Send); it never contains a token or secret.
	Send(ctx context.Context, r Report) error
}

// Backoff bounds: the first retry waits about InitialBackoff, each next one twice as
// long, never more than MaxBackoff. A server's Retry-After is honoured up to
// MaxRetryAfter.
const (
	InitialBackoff = time.Second
	MaxBackoff     = 5 * time.Minute
	MaxRetryAfter  = time.Hour
)

// Notifier sends a report to every configured sink. Its methods may be called
// concurrently; a nil *Notifier is disabled and sends nothing.
type Notifier struct {
	sinks []Sink
	// Time and randomness are inputs, so tests replace them and never sleep.
	wait   func(ctx context.Context, d time.Duration) error // sleeps d or until ctx ends
	jitter func(d time.Duration) time.Duration              // a delay in [d/2, d]
	now    func() time.Time
}

// Enabled reports whether any sink is configured.
func (n *Notifier) Enabled() bool { return n != nil && len(n.sinks) > 0 }

// Send delivers r to every sink at once, retrying each failed sink with exponential
// backoff and jitter (1 s doubling to 5 min; at least a 429's or 503's Retry-After) until
// it succeeds, gives a permanent error (a redirect, or a 4xx other than 408, 429 and a
// rate-limited 403), or ctx ends. It returns nil when every sink accepted, else a joined
// error naming each sink that did not. A report that no sink could accept (not a full SHA,
// an unknown state) is refused at once.
func (n *Notifier) Send(ctx context.Context, r Report) error {
	if !n.Enabled() {
		return nil
	}
	if err := r.validate(); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = n.now() // fixed before the first attempt, so every retry sends the same body
	}
	errs := make([]error, len(n.sinks))
	var wg sync.WaitGroup
	for i, s := range n.sinks {
		wg.Go(func() {
			if err := n.deliver(ctx, s, r); err != nil {
				errs[i] = fmt.Errorf("notify: %s: %w", s.Name(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliver sends r to s until it accepts, refuses for good, or ctx ends.
func (n *Notifier) deliver(ctx context.Context, s Sink, r Report) error {
	for attempt := 0; ; attempt++ {
		err := s.Send(ctx, r)
		if err == nil {
			return nil
		}
		var se *statusError
		isStatus := errors.As(err, &se)
		if isStatus && se.permanent {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt+1, ctx.Err())
		}
		d := n.jitter(backoff(attempt))
		if isStatus {
			d = max(d, retryAfter(se.header, n.now()))
		}
		if werr := n.wait(ctx, d); werr != nil {
			return fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt+1, werr)
		}
	}
}

// backoff is the delay before retry number attempt+1, before jitter.
func backoff(attempt int) time.Duration {
	d := InitialBackoff
	for range attempt {
		if d *= 2; d >= MaxBackoff {
			return MaxBackoff
		}
	}
	return d
}

// sleep waits d, or less if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// describe is the one-line description GitHub and GitLab show: the report's, or the
// state's summary, then the first error, cut to limit characters. A superseded commit
// says so, as GitHub's "error" state alone would not.
func describe(r Report, limit int) string {
	d := oneLine(r.Description)
	if d == "" {
		d = states[r.State].summary
	} else if r.State == Superseded && !strings.Contains(strings.ToLower(d), "superseded") {
		d = "superseded: " + d
	}
	if len(r.Errors) > 0 {
		d += ": " + oneLine(r.Errors[0])
	}
	return truncate(d, limit)
}

// oneLine turns every run of whitespace and control characters into one space.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(c rune) bool {
		return c <= ' ' || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == '\u2028' || c == '\u2029'
	}), " ")
}

// truncate cuts s to at most limit characters (runes), ending a cut one with "…".
func truncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit-1]) + "…"
}

// defaultHTTPClient is the client used when Config has none.
func defaultHTTPClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
