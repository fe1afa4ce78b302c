package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalhq/shoal/spec"
)

// ErrPollerStarted is returned by a second call to Poller.Run.
var ErrPollerStarted = errors.New("source: poller already started")

// PollerConfig tunes a Poller. Start from DefaultPollerConfig; NewPoller validates.
type PollerConfig struct {
	// Interval is the time between two checks of the remote head while all is well.
	Interval time.Duration
	// Jitter spreads every wait uniformly over ±Jitter of its length (0.1 is ±10%), so
	// that a fleet of daemons does not ask the Git host at the same instant. 0 turns it
	// off; it must be below 1.
	Jitter float64
	// BackoffBase is the wait after the first failure in a row. Each further failure
	// doubles it, up to BackoffMax, and jitter applies on top: with the defaults 5s,
	// 10s, 20s, 40s, 80s, 160s, then 5m for as long as failures go on. The first check
	// that succeeds returns to Interval.
	BackoffBase time.Duration
	// BackoffMax caps the wait between failed checks.
	BackoffMax time.Duration
	// Timeout bounds one check: ls-remote, fetch and load together.
	Timeout time.Duration
	// Rand draws the jitter; nil means a randomly seeded source.
	Rand *rand.Rand
	// Logger receives failures and new revisions; nil means slog.Default().
	Logger *slog.Logger
	// Marker, when set, records every revision before it is loaded, and names the suspect
	// revision, the one the daemon went down applying: it is not loaded while the remote
	// head stays on it, and the trusted one, the last the daemon ran with long enough, is
	// loaded in its place when the clone still holds it.
	Marker *Marker
}

// DefaultPollerConfig returns the defaults: a check a minute ±10%, backoff from 5s
// doubling up to 5m, and two minutes for one check.
func DefaultPollerConfig() PollerConfig {
	return PollerConfig{
		Interval:    time.Minute,
		Jitter:      0.1,
		BackoffBase: 5 * time.Second,
		BackoffMax:  5 * time.Minute,
		Timeout:     2 * time.Minute,
	}
}

// Validate reports a configuration NewPoller would refuse.
func (c PollerConfig) Validate() error {
	var problems []error
	if c.Interval <= 0 {
		problems = append(problems, fmt.Errorf("Interval %v must be positive", c.Interval))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		problems = append(problems, fmt.Errorf("Jitter %v must be in [0, 1)", c.Jitter))
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		problems = append(problems, fmt.Errorf("want 0 < BackoffBase (%v) <= BackoffMax (%v)", c.BackoffBase, c.BackoffMax))
	}
	if c.Timeout <= 0 {
		problems = append(problems, fmt.Errorf("Timeout %v must be positive", c.Timeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("source: poller config: %w", errors.Join(problems...))
	}
	return nil
}

// Event is what one check of the remote (or, at start, of the clone) found, sent when
// there is news:
//
//   - a new revision that loaded: Revision and Desired set, Diagnostics holds warnings;
//   - a new revision that was rejected: Revision, Diagnostics and Err (wrapping
//     ErrRevisionRejected) set, Desired nil; the last good revision stays in force;
//   - a failure to reach the remote, fetch or read the clone: Err and RetryIn set,
//     Revision set when the failing commit is known;
//   - the first successful check after failures that found nothing new: only Revision
//     (the commit last loaded), so that a consumer can clear its error status;
//   - the suspect commit (PollerConfig.Marker) at the head: Revision and Err (wrapping
//     ErrRevisionSuspect) set, and Desired the trusted revision when it loaded.
type Event struct {
	Revision    spec.Revision
	Desired     *spec.Desired
	Diagnostics spec.Diagnostics
	Err         error
	// RetryIn is the backoff before the next attempt, for failures only.
	RetryIn time.Duration
}

// Poller watches a Repo's remote and emits an Event on Events whenever there is news.
// It does no work while the remote head stays on the commit last loaded, whether that
// commit loaded or was rejected. Run is its one goroutine; it owns the Repo while it runs.
type Poller struct {
	repo    *Repo
	cfg     PollerConfig
	log     *slog.Logger
	events  chan Event
	trigger chan struct{}
	started atomic.Bool
	// lastGood is written by Run and read by anyone: a snapshot nobody modifies.
	lastGood atomic.Pointer[spec.Desired]

	// repoMu serialises the use of repo between Run and LoadCommit; historyFetched is
	// when LoadCommit last fetched history (held with repoMu).
	repoMu         sync.Mutex
	historyFetched time.Time

	// Owned by the Run goroutine.
	loaded   spec.Revision // last revision loaded, good or rejected
	failures int           // failures in a row
	rand     *rand.Rand
}

// NewPoller returns a Poller over repo; call Run to start it.
func NewPoller(repo *Repo, cfg PollerConfig) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if repo == nil {
		return nil, errors.New("source: NewPoller needs a Repo")
	}
	p := &Poller{
		repo:    repo,
		cfg:     cfg,
		log:     cfg.Logger,
		events:  make(chan Event),
		trigger: make(chan struct{}, 1),
		rand:    cfg.Rand,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.rand == nil {
		p.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return p, nil
}

// Events delivers what Run finds. It is unbuffered: Run waits for the consumer, which
// must keep reading until the channel is closed, when Run returns.
func (p *Poller) Events() <-chan Event { return p.events }

// LastGood is the last revision that loaded without errors, or nil before the first.
// Callers must not modify it.
func (p *Poller) LastGood() *spec.Desired { return p.lastGood.Load() }

// Trigger asks for a check now. It never blocks; triggers that arrive while a check is
// pending or running are coalesced into one more check.
func (p *Poller) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Run checks the remote at once, and again on every interval (or backoff) and trigger,
// until ctx is done; then it closes Events and returns nil. It may be called once.
//
// The remote comes first: the clone may hold the very commit that took the daemon down,
// and the remote its revert. Only when the first check fails does Run load the revision
// the clone already holds, so that a restarted daemon has its desired state even without
// the remote.
func (p *Poller) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return ErrPollerStarted
	}
	defer close(p.events)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.trigger:
		}
		p.repoMu.Lock()
		wait, ev, news := p.check(ctx)
		var resumed Event
		resumedOK := false
		if first && ctx.Err() == nil && ev.Err != nil && p.loaded.Commit == "" {
			resumed, resumedOK = p.resume(ctx)
		}
		p.repoMu.Unlock()
		if ctx.Err() != nil {
			return nil // a check cut short by shutdown is not news
		}
		if resumedOK && !p.emit(ctx, resumed) {
			return nil
		}
		if news && !p.emit(ctx, ev) {
			return nil
		}
		timer.Reset(wait)
	}
}

// LoadCommit loads an earlier commit of the branch, such as the one a failed rollout goes
// back to. A commit the clone does not hold (it fetches the head only) is fetched with
// the branch's recent history first. It is safe to call while Run runs.
func (p *Poller) LoadCommit(ctx context.Context, commit string) (*spec.Desired, error) {
	p.repoMu.Lock()
	defer p.repoMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	d, _, err := p.repo.Load(ctx, spec.Revision{Commit: commit})
	if errors.Is(err, ErrCommitNotFound) && time.Since(p.historyFetched) > historyEvery {
		// At most one history fetch per historyEvery, whoever asks for which commit.
		p.historyFetched = time.Now()
		if ferr := p.repo.FetchHistory(ctx, historyDepth); ferr != nil {
			return nil, ferr
		}
		d, _, err = p.repo.Load(ctx, spec.Revision{Commit: commit})
	}
	return d, err
}

// historyDepth is how many commits of the branch LoadCommit fetches when the commit it
// wants is not in the clone; historyEvery how often at most.
const (
	historyDepth = 100
	historyEvery = 5 * time.Minute
)

// emit delivers ev, or gives up when ctx is done.
func (p *Poller) emit(ctx context.Context, ev Event) bool {
	select {
	case p.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// resume loads the revision the clone already holds. Nothing fetched yet, or a clone
// that cannot be read, is left to the first check: its Fetch clones or repairs.
func (p *Poller) resume(ctx context.Context) (Event, bool) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	rev, err := p.repo.Fetched()
	if err != nil {
		return Event{}, false
	}
	ev, err := p.load(ctx, rev)
	return ev, err == nil
}

// check runs one poll cycle and says how long to wait before the next one, and what
// to report, if anything.
func (p *Poller) check(ctx context.Context) (time.Duration, Event, bool) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	head, err := p.repo.Head(ctx)
	if err != nil {
		return p.fail(Event{Err: err})
	}
	if head == p.loaded.Commit {
		return p.unchanged()
	}
	rev, err := p.repo.Fetch(ctx)
	if err != nil {
		return p.fail(Event{Err: err})
	}
	if rev.Commit == p.loaded.Commit { // the head moved back between ls-remote and fetch
		return p.unchanged()
	}
	ev, err := p.load(ctx, rev)
	if err != nil {
		return p.fail(ev) // a Git problem, not the commit's: try it again later
	}
	return p.jitter(p.cfg.Interval), ev, true
}

// load loads rev. Unless Git failed (the error returned), rev becomes the revision
// loaded, which is not loaded again, and if it has no errors, the last good one.
func (p *Poller) load(ctx context.Context, rev spec.Revision) (Event, error) {
	m := p.cfg.Marker
	if m != nil && rev.Commit == m.Suspect() {
		return p.skipSuspect(ctx, rev), nil
	}
	// Loading is the first thing a hostile revision could take the daemon down with.
	p.mark(m, (*Marker).Applying, rev.Commit)
	desired, diags, err := p.repo.Load(ctx, rev)
	if err != nil {
		p.mark(m, (*Marker).Release, rev.Commit)
	}
	ev := Event{Revision: rev, Desired: desired, Diagnostics: diags, Err: err}
	if err != nil && !errors.Is(err, ErrRevisionRejected) {
		return ev, err
	}
	p.loaded, p.failures = rev, 0
	if err != nil {
		p.log.Warn("source: revision rejected; last good stays in force", "commit", rev.Commit, "err", err)
	} else {
		p.lastGood.Store(desired)
		p.log.Info("source: new revision", "commit", rev.Commit, "author", rev.Author,
			"message", rev.Message, "warnings", len(diags.Warnings()))
	}
	return ev, nil
}

// mark records commit in the marker, if any; a failure is logged, not fatal: the marker
// only protects the next start.
func (p *Poller) mark(m *Marker, record func(*Marker, string) error, commit string) {
	if m == nil {
		return
	}
	if err := record(m, commit); err != nil {
		p.log.Error("source: recording the revision being loaded failed", "commit", commit, "err", err)
	}
}

// skipSuspect reports the suspect commit instead of loading it, and loads the trusted
// one in its place when nothing is loaded yet. The suspect counts as loaded, so that it
// is not looked at again until the remote head moves.
func (p *Poller) skipSuspect(ctx context.Context, rev spec.Revision) Event {
	p.loaded, p.failures = rev, 0
	trusted := p.cfg.Marker.Trusted()
	ev := Event{Revision: rev, Err: fmt.Errorf("%w: %s; push a newer commit (a revert or a fix) to go on", ErrRevisionSuspect, rev.Commit)}
	p.log.Error("source: not applying the revision the daemon went down applying", "commit", rev.Commit, "trusted", trusted)
	if t := trusted; t != "" && t != rev.Commit && p.lastGood.Load() == nil {
		desired, _, err := p.repo.Load(ctx, spec.Revision{Commit: t})
		if err != nil {
			p.log.Warn("source: the trusted revision could not be loaded either", "commit", t, "err", err)
			return ev
		}
		ev.Desired = desired
		p.lastGood.Store(desired)
	}
	return ev
}

// unchanged ends a check that found nothing new; after failures that is news.
func (p *Poller) unchanged() (time.Duration, Event, bool) {
	recovered := p.failures > 0
	p.failures = 0
	return p.jitter(p.cfg.Interval), Event{Revision: p.loaded}, recovered
}

func (p *Poller) fail(ev Event) (time.Duration, Event, bool) {
	p.failures++
	ev.RetryIn = p.jitter(backoff(p.failures, p.cfg.BackoffBase, p.cfg.BackoffMax))
	p.log.Warn("source: check failed", "failures", p.failures, "retryIn", ev.RetryIn, "err", ev.Err)
	return ev.RetryIn, ev, true
}

func (p *Poller) jitter(d time.Duration) time.Duration {
	return jittered(d, p.cfg.Jitter, p.rand.Float64())
}

// backoff is the wait after the n-th failure in a row (n >= 1): base doubled n-1 times,
// capped at max.
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// jittered spreads d over [d(1-frac), d(1+frac)) as u goes over [0, 1).
func jittered(d time.Duration, frac, u float64) time.Duration {
	return d + time.Duration(float64(d)*frac*(2*u-1))
}
