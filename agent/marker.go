package agent

import "time"

// RevisionMarker remembers across restarts which revision the agent is applying and
// which it has survived, so that a revision that took the agent down is not applied again
// at start-up (see source.Marker, which is one). Its methods are called by the loop only.
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

// markSurvived decides that the desired revision has survived once the agent has
// converged on it (planned it and started its share: what a hostile revision would crash)
// or run with it for Config.SurviveAfter, whichever comes first. The shell records it.
func (c *core) markSurvived() {
	if c.desired == nil || c.survivalDue.IsZero() {
		return
	}
	if converged := c.applied != nil && c.applied.Commit == c.desired.Revision.Commit; !converged && c.now.Before(c.survivalDue) {
		return
	}
	c.survivalDue = time.Time{}
	c.rd.markSurvived = c.desired.Revision.Commit
}
