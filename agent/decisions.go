package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shoalhq/shoal/gossip"
)

// maxDecisionsFile bounds what loadDecisions reads: more than gossip's own bounds allow.
const maxDecisionsFile = 16 << 20

// WithDecisionsFile keeps the decisions of an agent without a cluster (rollout verdicts,
// commit statuses sent) in file, so that they survive a restart. With a cluster, gossip
// keeps them (gossip.Config.DecisionsFile) and this file is not used.
func WithDecisionsFile(file string) Option { return func(a *Agent) { a.decisionsFile = file } }

// loadDecisions reads the decisions an earlier run of an agent without a cluster kept. A
// missing file is no decision; a damaged one is reported and ignored.
func loadDecisions(file string) ([]gossip.Decision, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDecisionsFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDecisionsFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxDecisionsFile)
	}
	var list []gossip.Decision
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return slices.DeleteFunc(list, func(d gossip.Decision) bool {
		return d.Key == "" || len(d.Key) > gossip.MaxDecisionKey || len(d.Body) > gossip.MaxDecisionBody
	}), nil
}

// saveDecisions writes every decision the core holds to file: a new file, synced, renamed
// over the old one.
func saveDecisions(file string, list []gossip.Decision) error {
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".decisions-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// decisionList is every decision the core holds, by key.
func (c *core) decisionList() []gossip.Decision {
	list := make([]gossip.Decision, 0, len(c.decisions))
	for _, d := range c.decisions {
		list = append(list, d)
	}
	slices.SortFunc(list, func(a, b gossip.Decision) int { return strings.Compare(a.Key, b.Key) })
	return list
}
