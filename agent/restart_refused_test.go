package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/executor"
)

// refusingRestarts is a runtime whose restarts are refused, as the executor refuses a
// container that swapped its subPath for a symlink.
type refusingRestarts struct{ executor.Runtime }

func (refusingRestarts) Restart(_ context.Context, id, container string) error {
	return fmt.Errorf("executor: restart %s/%s: volume scratch: subPath \"x\": %w: \"x\" is a symlink", id, container, executor.ErrUnsafePath)
}

// TestRefusedRestartReportedInStatus checks that the reason a restart was refused reaches
// the instance's status, not only the log.
func TestRefusedRestartReportedInStatus(t *testing.T) {
	h := newHarnessWrapped(t, nil, func(rt executor.Runtime) executor.Runtime { return refusingRestarts{rt} })
	crash := "        env:\n        - {name: EXIT_AFTER, value: 10ms}\n"
	h.push(map[string]string{"crash.yaml": deployment("crash", "hello:v1", 1, crash)})
	h.waitFor("refusal in status", func(st *Status) bool {
		w := workload(st, "crash")
		return w != nil && len(w.Instances) == 1 && strings.Contains(w.Instances[0].LastExit, `restart failed: `) &&
			strings.Contains(w.Instances[0].LastExit, `"x" is a symlink`)
	})
}
