package agent

import "time"

// RevisionMarker remembers across restarts which revision the agent is applying and
// which it has survived, so that a revision that took the agent down is not applied again
// at start-up (see sync.Marker, which is one). Its methods are called by the loop only.
type RevisionMarker interface {
	// Applying is called, and must be durable, before the agent acts on a new revision.
	Applying(commit string) error
	// Survived is called once the agent has run with the revision for Config.SurviveAfter.
	Survived(commit string) error
	// Release is called when the agent stops cleanly before the revision survived: it did
	// not take the agent down.
	Release(commit string) error
}

// WithRevisionMarker makes the agent record the revisions it applies and survives.
func WithRevisionMarker(m RevisionMarker) Option { return func(a *Agent) { a.marker = m } }

// markApplying records that the agent is about to act on commit; a failure is logged,
// not fatal: the marker only protects the next start.
func (a *Agent) markApplying(commit string, now time.Time) {
	a.survivalDue = now.Add(a.cfg.SurviveAfter)
	if a.marker == nil {
		return
	}
	if err := a.marker.Applying(commit); err != nil {
		a.log.Error("recording the revision being applied failed", "commit", commit, "err", err)
	}
}

// markSurvived records the desired revision as survived once the agent has converged on
// it (planned it and started its share: what a hostile revision would crash) or run with
// it for Config.SurviveAfter, whichever comes first.
func (a *Agent) markSurvived(now time.Time) {
	if a.marker == nil || a.desired == nil || a.survivalDue.IsZero() {
		return
	}
	if converged := a.applied != nil && a.applied.Commit == a.desired.Revision.Commit; !converged && now.Before(a.survivalDue) {
		return
	}
	a.survivalDue = time.Time{}
	if err := a.marker.Survived(a.desired.Revision.Commit); err != nil {
		a.log.Error("recording the revision as survived failed", "commit", a.desired.Revision.Commit, "err", err)
	}
}

// markStopped tells the marker the agent stops cleanly. It is called on the way out of
// Run, never from a deferred call: a panic unwinding Run must leave the revision marked.
func (a *Agent) markStopped() {
	if a.marker == nil || a.desired == nil || a.survivalDue.IsZero() {
		return
	}
	if err := a.marker.Release(a.desired.Revision.Commit); err != nil {
		a.log.Error("recording a clean stop failed", "commit", a.desired.Revision.Commit, "err", err)
	}
}
