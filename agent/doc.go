// Package agent is the daemon loop: the one goroutine that owns a node's state. It selects
// over new revisions (from sync), runtime events (from the executor), results of the
// actions it handed out, and a resync tick; on each it asks planner.Plan where every replica
// belongs and hands this node's share to the executor as start, stop and restart actions.
//
// The agent decides when (rollout pacing, crash backoff); the planner decides where; the
// executor does the containerd work. Nothing outside the loop goroutine touches its state:
// other goroutines talk to it over channels, and status readers get immutable snapshots.
package agent
