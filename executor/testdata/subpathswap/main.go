// Command subpathswap is the attacker of the executor's subPath test, run in a container
// that mounts an emptyDir at /shared and its subPath x at /data. On its first run it
// proves /data works, then swaps /shared/x for a symlink to / and exits 1, so that the
// restart binds whatever x is then. Run again, it reports in /shared/result whether /data
// shows the host file MARKER (an absolute host path), and stays up.
package main

import (
	"log"
	"os"
	"path/filepath"
)

func main() {
	marker := os.Getenv("MARKER")
	if _, err := os.Stat("/shared/swapped"); err == nil {
		result := "contained"
		if _, err := os.Stat(filepath.Join("/data", marker)); err == nil {
			result = "host root visible"
		}
		if err := os.WriteFile("/shared/result", []byte(result), 0o644); err != nil {
			log.Fatal(err)
		}
		select {}
	}
	steps := []func() error{
		func() error { return os.WriteFile("/data/first-run", []byte("x"), 0o644) },
		func() error { return os.RemoveAll("/shared/x") },
		func() error { return os.Symlink("/", "/shared/x") },
		func() error { return os.WriteFile("/shared/swapped", nil, 0o644) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			log.Fatal(err)
		}
	}
	os.Exit(1)
}
