package executor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOOMKillCount(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	write("memory/ns/v1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	write("memory/ns/v1-clean/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
	write("ns/v2/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
	write("memory/ns/garbled/memory.oom_control", "oom_kill many\n")
	tests := []struct {
		cgroup  string
		want    int
		wantErr bool
	}{
		{"/ns/v1", 2, false},
		{"/ns/v1-clean", 0, false},
		{"/ns/v2", 1, false},
		{"/ns/deleted", 0, false},
		{"/ns/garbled", 0, true},
	}
	for _, tt := range tests {
		got, err := oomKillCount(root, tt.cgroup)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("oomKillCount(%s) = %d, %v; want %d, error %v", tt.cgroup, got, err, tt.want, tt.wantErr)
		}
	}
}
