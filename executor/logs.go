package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Log files live at <state dir>/logs/<instance ID>/<container>.log; stdout and stderr of a
// container go to the same file, and the containerd shim writes it (cio.LogFile), so logs
// keep flowing while no agent runs.
//
// Rotation is copy-truncate: when a file grows over the cap, the executor copies it to
// <name>.1 (replacing the previous one) and truncates it to zero. The shim holds the file
// open with O_APPEND and cannot be asked to reopen it, so this is the only rotation that
// needs no cooperation from the writer. The trade-off: lines written between the copy and
// the truncation are lost, and the file can exceed the cap by what is written between two
// checks. At most twice the cap (plus that slack) is kept per container.

const (
	logsDir           = "logs"
	rotatedSuffix     = ".1"
	followPollEvery   = 100 * time.Millisecond
	rotateCopyTmpName = ".rotating"
)

// LogPath is where the log of one container of an instance is written under stateDir.
func LogPath(stateDir, instanceID, container string) string {
	return filepath.Join(LogDir(stateDir, instanceID), container+".log")
}

// LogDir holds the logs of one instance's containers; Stop removes it.
func LogDir(stateDir, instanceID string) string {
	return filepath.Join(stateDir, logsDir, instanceID)
}

// RotateLog copy-truncates the log at path when it is larger than maxBytes and reports
// whether it did. A missing file is not an error.
func RotateLog(path string, maxBytes int64) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rotate log %s: %w", path, err)
	}
	if fi.Size() <= maxBytes {
		return false, nil
	}
	if err := copyFile(path, path+rotateCopyTmpName); err != nil {
		return false, fmt.Errorf("rotate log %s: %w", path, err)
	}
	if err := os.Rename(path+rotateCopyTmpName, path+rotatedSuffix); err != nil {
		return false, fmt.Errorf("rotate log %s: %w", path, err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, fmt.Errorf("rotate log %s: %w", path, err)
	}
	return true, nil
}

// rotateLogs rotates every container log under stateDir that is over maxBytes.
func rotateLogs(stateDir string, maxBytes int64) error {
	paths, err := filepath.Glob(filepath.Join(stateDir, logsDir, "*", "*.log"))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		if _, err := RotateLog(p, maxBytes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CopyLog writes the last opts.Tail lines of the log at path (reaching into the rotated
// file when the current one holds fewer) to w and, with opts.Follow, what is appended
// next, until ctx ends; a rotation while following is noticed and nothing it moved is
// skipped. A log that does not exist yet is empty, so following waits for it.
func CopyLog(ctx context.Context, path string, opts LogOptions, w io.Writer) error {
	cur, err := readFileIfExists(path)
	if err != nil {
		return err
	}
	lines := opts.Tail
	start := tailStart(cur, lines)
	if lines < 0 || countLines(cur[start:]) < lines {
		old, err := readFileIfExists(path + rotatedSuffix)
		if err != nil {
			return err
		}
		rest := -1
		if lines >= 0 {
			rest = lines - countLines(cur)
		}
		if _, err := w.Write(old[tailStart(old, rest):]); err != nil {
			return err
		}
	}
	if _, err := w.Write(cur[start:]); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	return followLog(ctx, path, int64(len(cur)), w)
}

// followLog copies what is appended to path after offset until ctx ends. The shim appends
// without notifying anyone, so the file is polled.
func followLog(ctx context.Context, path string, offset int64, w io.Writer) error {
	tick := time.NewTicker(followPollEvery)
	defer tick.Stop()
	for {
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			offset = 0
		case err != nil:
			return fmt.Errorf("follow log %s: %w", path, err)
		case fi.Size() < offset:
			// Rotated: what came after offset before the copy is now in the .1 file.
			if err := copyRange(path+rotatedSuffix, offset, w); err != nil {
				return err
			}
			offset = 0
			continue
		case fi.Size() > offset:
			if err := copyRange(path, offset, w); err != nil {
				return err
			}
			offset = fi.Size()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// copyRange copies path from offset to its current end (as far as it was when statted) to w.
func copyRange(path string, offset int64, w io.Writer) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= offset {
		return err
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, offset, fi.Size()-offset)); err != nil {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	return nil
}

func readFileIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	return b, nil
}

// tailStart is the offset of the last n lines of b (all of b when n < 0). A last line
// without a newline counts as a line.
func tailStart(b []byte, n int) int {
	if n < 0 {
		return 0
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end-- // the final newline ends the last line; it does not start another
	}
	for ; n > 0; n-- {
		i := bytes.LastIndexByte(b[:end], '\n')
		if i < 0 {
			return 0
		}
		if n == 1 {
			return i + 1
		}
		end = i
	}
	return len(b)
}

// countLines counts lines in b, a last line without a newline included.
func countLines(b []byte) int {
	n := bytes.Count(b, []byte{'\n'})
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}
