package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CollectInstanceFiles removes the files of instances that have no container left:
// volumes (unmounting their tmpfs mounts: secrets and memory-backed emptyDirs) and logs
// of instances whose Start or Stop an agent crash cut short. Instances being started
// meanwhile are kept. The agent calls it at start-up, before it starts anything.
func (c *Containerd) CollectInstanceFiles(ctx context.Context) error {
	starting, done := c.starting.collecting()
	defer done()
	cts, err := c.shoalContainers(c.withNS(ctx), "")
	if err != nil {
		return fmt.Errorf("executor: collect instance files: %w", err)
	}
	exists := make(map[string]bool, len(cts))
	for _, l := range cts {
		exists[l.labels[LabelInstance]] = true
	}
	var errs []error
	for _, dir := range []string{filepath.Join(c.cfg.stateDir, "instances"), filepath.Join(c.cfg.stateDir, logsDir)} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			id := e.Name()
			if exists[id] || starting(id) {
				continue
			}
			c.cfg.logger.Info("executor: removing the files of an instance that no longer exists", "instance", id)
			errs = append(errs, c.removeInstanceFiles(id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("executor: collect instance files: %w", err)
	}
	return nil
}
