package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrRevisionSuspect is wrapped by the Event of a revision the daemon was applying when
// it last went down: the Poller does not load it at start-up, and goes on without it
// until the remote head moves to another commit.
var ErrRevisionSuspect = errors.New("source: revision skipped: the daemon went down applying it")

// markerFile is the Marker's file in the state directory.
const markerFile = "revision-marker.json"

// markerState is what the marker file holds: the commit being applied, the last one the
// daemon ran with long enough to trust, and the one it went down applying, if any.
type markerState struct {
	Applying string `json:"applying,omitempty"`
	Survived string `json:"survived,omitempty"`
	Suspect  string `json:"suspect,omitempty"`
	// Retried is the suspect the daemon applied again once, because every other node of
	// its cluster runs it (Retry).
	Retried string `json:"retried,omitempty"`
}

// Marker remembers, in the state directory and across restarts, which revision the
// daemon is applying and which it has survived, so that a commit that takes the daemon
// down (a crash, an out-of-memory kill) is not applied again at every start: a crash loop
// that only deleting the state directory could end. Applying is called before a revision
// is loaded (by the Poller) and acted on (by the daemon); Survived once the daemon has run
// with it for a while; Release when it did not take the daemon down after all (it was
// rejected, or the daemon stopped cleanly). A revision still marked applying at the next
// start is the suspect, which the Poller skips.
//
// A Marker is safe for concurrent use. Suspect and Trusted are fixed when it is opened.
type Marker struct {
	path  string
	mu    sync.Mutex
	state markerState
	// The state found at open.
	suspect, trusted string
}

// OpenMarker reads the marker in dir, creating dir if needed. A revision found applying
// but not survived becomes the suspect, and is recorded as such before OpenMarker returns.
func OpenMarker(dir string) (*Marker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("source: marker directory: %w", err)
	}
	m := &Marker{path: filepath.Join(dir, markerFile)}
	data, err := os.ReadFile(m.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("source: read marker: %w", err)
	default:
		if err := json.Unmarshal(data, &m.state); err != nil {
			// A torn or damaged marker forgets only which revision to distrust.
			m.state = markerState{}
		}
	}
	if a := m.state.Applying; a != "" && a != m.state.Survived {
		m.state.Suspect, m.state.Applying = a, ""
		if err := m.save(); err != nil {
			return nil, err
		}
	}
	m.suspect, m.trusted = m.state.Suspect, m.state.Survived
	return m, nil
}

// Suspect is the commit the daemon went down applying, as found at open; "" if none.
func (m *Marker) Suspect() string { return m.suspect }

// Trusted is the last commit the daemon ran with long enough, as found at open; "" if none.
func (m *Marker) Trusted() string { return m.trusted }

// Applying records, durably, that the daemon is about to load or act on commit. Applying
// a commit other than the suspect and the trusted one (a newer commit) clears the suspect.
func (m *Marker) Applying(commit string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Applying == commit {
		return nil
	}
	m.state.Applying = commit
	if commit != m.state.Survived && commit != m.state.Suspect {
		m.state.Suspect = ""
	}
	return m.save()
}

// Survived records that the daemon has run with commit long enough to trust it. It does
// nothing unless commit is the one being applied.
func (m *Marker) Survived(commit string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Applying != commit || m.state.Survived == commit {
		return nil
	}
	m.state.Survived = commit
	return m.save()
}

// Retry records, durably, that the daemon applies the suspect commit again because the
// rest of its cluster runs it: it went down applying it, but so would it have for a
// kill -9 or a power cut. It answers false when commit was retried once already and the
// daemon went down with it again: then it is left alone until a newer commit.
func (m *Marker) Retry(commit string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Retried == commit {
		return false, nil
	}
	m.state.Retried = commit
	return true, m.save()
}

// Release records that commit did not take the daemon down after all (it was rejected, or
// the daemon stopped cleanly while applying it): it is no suspect at the next start, nor
// trusted, as it did not run long enough to tell.
func (m *Marker) Release(commit string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Applying != commit || m.state.Survived == commit {
		return nil
	}
	m.state.Applying = ""
	return m.save()
}

// ReleaseApplying releases whatever revision is being applied: for a daemon that stops
// cleanly, whether or not the revision reached its agent (the source marks a revision
// before it hands it over, so a stop in between would otherwise leave it suspect).
func (m *Marker) ReleaseApplying() error {
	m.mu.Lock()
	applying := m.state.Applying
	m.mu.Unlock()
	if applying == "" {
		return nil
	}
	return m.Release(applying)
}

// save writes the state (m.mu held, or m not shared yet) to a new file, syncs it and renames it over the old one, so that
// a crash at any moment leaves the old marker or the new one.
func (m *Marker) save() error {
	data, err := json.Marshal(m.state)
	if err != nil {
		return fmt.Errorf("source: marker: %w", err)
	}
	tmp := m.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("source: write marker: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, m.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(m.path))
	}
	if err != nil {
		return fmt.Errorf("source: write marker: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
