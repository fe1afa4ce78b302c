package executor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestTailStart(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"a\nb\npartial", 1, "partial"},
		{"a\nb\npartial", 2, "b\npartial"},
		{"\n\n", 1, "\n"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := tt.in[tailStart([]byte(tt.in), tt.n):]; got != tt.want {
			t.Errorf("last %d lines of %q = %q, want %q", tt.n, tt.in, got, tt.want)
		}
	}
}

func TestCopyLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path+rotatedSuffix, []byte("old1\nold2\nold3\n"), 0o600)
	os.WriteFile(path, []byte("new1\nnew2\n"), 0o600)
	tests := []struct {
		tail int
		want string
	}{
		{1, "new2\n"},
		{2, "new1\nnew2\n"},
		{3, "old3\nnew1\nnew2\n"},
		{-1, "old1\nold2\nold3\nnew1\nnew2\n"},
		{0, ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := CopyLog(context.Background(), path, LogOptions{Tail: tt.tail}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("Tail %d = %q, want %q", tt.tail, out.String(), tt.want)
		}
	}
	var out bytes.Buffer
	if err := CopyLog(context.Background(), filepath.Join(dir, "none.log"), LogOptions{Tail: -1}, &out); err != nil || out.Len() != 0 {
		t.Errorf("a log not written yet: %q, %v; want empty", out.String(), err)
	}
}

func TestRotateLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if rotated, err := RotateLog(path, 10); rotated || err != nil {
		t.Fatalf("missing file: rotated %v, %v", rotated, err)
	}
	os.WriteFile(path, []byte("0123456789"), 0o600)
	if rotated, _ := RotateLog(path, 10); rotated {
		t.Fatal("rotated a file at the cap, not over it")
	}
	// The writer keeps its O_APPEND descriptor across the rotation, as the shim does.
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString("abc\n")
	if rotated, err := RotateLog(path, 10); !rotated || err != nil {
		t.Fatalf("over the cap: rotated %v, %v", rotated, err)
	}
	w.WriteString("after\n")
	if b, _ := os.ReadFile(path + rotatedSuffix); string(b) != "0123456789abc\n" {
		t.Errorf("rotated file = %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "after\n" {
		t.Errorf("log after rotation = %q, want the writer to carry on at its start", b)
	}
	if _, err := os.Stat(path + rotateCopyTmpName); !os.IsNotExist(err) {
		t.Errorf("rotation left its temporary copy: %v", err)
	}
}

// syncBuffer lets the test read what CopyLog's follow writes from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCopyLogFollowsAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString("before\n")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error)
	go func() { done <- CopyLog(ctx, path, LogOptions{Tail: 1, Follow: true}, out) }()

	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("followed %q, want %q", out.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("before\n") // the follower has read the file: what comes next is new
	w.WriteString("one\n")
	waitFor("before\none\n")
	// Written and rotated away before the follower looks again: it must still see "two".
	w.WriteString("two\n")
	if _, err := RotateLog(path, 1); err != nil {
		t.Fatal(err)
	}
	w.WriteString("three\n")
	waitFor("before\none\ntwo\nthree\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
