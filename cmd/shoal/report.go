package main

import (
	"context"
	"fmt"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/notify"
)

// reporter sends the agent's commit reports through a notify.Notifier.
type reporter struct {
	n    *notify.Notifier
	node string
}

// reportStates maps the agent's commit fates to the states sinks are told.
var reportStates = map[string]notify.State{
	"pending":              notify.Pending,
	agent.CommitSucceeded:  notify.Success,
	agent.CommitFailed:     notify.Failure,
	agent.CommitSuperseded: notify.Superseded,
}

// Send implements agent.Reporter.
func (r reporter) Send(ctx context.Context, rep agent.Report) error {
	state, ok := reportStates[rep.State]
	if !ok {
		return fmt.Errorf("no commit status for state %q", rep.State)
	}
	out := notify.Report{Commit: rep.Commit, State: state, Description: rep.Description, Errors: rep.Errors, Node: r.node}
	for _, w := range rep.Workloads {
		out.Workloads = append(out.Workloads, notify.WorkloadResult{Namespace: w.Namespace, Name: w.Name, Outcome: w.State, Reason: w.Reason})
	}
	return r.n.Send(ctx, out)
}
