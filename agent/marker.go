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
	// Retry is called before the agent applies again the revision it went down applying,
	// because every other node runs it; false means it was retried once already.
	Retry(commit string) (bool, error)
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

// retrySuspect asks to apply again the revision this agent went down applying (the
// source skipped it) once every other alive node has applied it: the commit did not take
// them down, and an agent killed with -9 or a power cut during a rollout would otherwise
// hold its node on the old revision, and the rollout with it, until the next commit.
func (c *core) retrySuspect() {
	if c.suspect == "" || c.loading[c.suspect] || !c.clustered || c.notJoined != "" {
		return
	}
	others, applied := 0, 0
	for _, n := range c.view.Nodes {
		if n.Alive && n.Name != c.cfg.NodeName {
			others++
			if n.Revision == c.suspect {
				applied++
			}
		}
	}
	if others == 0 || applied < others {
		return
	}
	c.log.Info("every other node runs the revision this agent went down applying: applying it again", "commit", c.suspect)
	if c.loading == nil {
		c.loading = map[string]bool{}
	}
	c.loading[c.suspect] = true
	c.rd.retrySuspect = c.suspect
}

// onSuspectLoaded takes in the suspect revision loaded again: it becomes the desired one.
func (c *core) onSuspectLoaded(ev commitLoadedEvent) {
	delete(c.loading, ev.commit)
	if ev.err != nil {
		c.log.Warn("the revision this agent went down applying is not applied again", "commit", ev.commit, "err", ev.err)
		c.suspect = "" // until the next commit
		return
	}
	c.suspect = ""
	c.syncState.Error, c.syncState.Rejected = "", nil
	c.accept(ev.desired)
}
