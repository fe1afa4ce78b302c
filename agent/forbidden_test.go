package agent

import (
	"strings"
	"testing"
)

// TestForbiddenInstanceReportedInStatus: an instance asking for a host namespace the node
// does not allow is refused, and its status says why and which flag would allow it.
func TestForbiddenInstanceReportedInStatus(t *testing.T) {
	h := newHarness(t, nil)
	h.push(map[string]string{"pid.yaml": deployment("pid", "hello:v1", 1, "      hostPID: true\n")})
	h.waitFor("refusal in status", func(st *Status) bool {
		w := workload(st, "pid")
		return w != nil && len(w.Instances) == 1 && w.Instances[0].Phase == PhaseForbidden &&
			strings.Contains(w.Instances[0].Message, "hostPID (start the agent with --allow-host-pid to allow it)")
	})
}
