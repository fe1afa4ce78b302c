package executor

import (
	"fmt"
	"time"
)

// Backoff is the CrashLoopBackOff schedule of one container, as the kubelet runs it: the
// first crash in a row restarts at once (ImmediateFirst), then the waits are Base, 2·Base,
// 4·Base, … capped at Cap (10s, 20s, 40s, … 5m); a container that ran for ResetAfter or
// longer before it crashed starts the schedule again. Without ImmediateFirst the first
// wait is Base. Backoff is pure: the caller says how long the container ran, and keeps one
// Backoff per container. The zero value is not usable; start from DefaultBackoff.
type Backoff struct {
	// Base is the delay after the first crash.
	Base time.Duration
	// Cap bounds the delay.
	Cap time.Duration
	// ResetAfter is how long a container must run for its next crash to count as the first.
	ResetAfter time.Duration
	// ImmediateFirst makes the first crash in a row wait nothing, so that Base is the
	// wait after the second: the kubelet restarts a container that just exited at once.
	ImmediateFirst bool

	crashes int // consecutive crashes so far
}

// DefaultBackoff returns the kubelet's schedule: at once, then 10s doubling to 5m, reset
// after 10m of running.
func DefaultBackoff() Backoff {
	return Backoff{Base: 10 * time.Second, Cap: 5 * time.Minute, ResetAfter: 10 * time.Minute, ImmediateFirst: true}
}

// Validate checks that the schedule is usable.
func (b *Backoff) Validate() error {
	if b.Base <= 0 || b.Cap < b.Base || b.ResetAfter <= 0 {
		return fmt.Errorf("backoff: want 0 < Base <= Cap and ResetAfter > 0, have Base %v, Cap %v, ResetAfter %v", b.Base, b.Cap, b.ResetAfter)
	}
	return nil
}

// Next records a crash of a container that ran for ran and returns how long to wait
// before restarting it.
func (b *Backoff) Next(ran time.Duration) time.Duration {
	if ran >= b.ResetAfter {
		b.crashes = 0
	}
	b.crashes++
	waits := b.crashes // the place of this wait in Base, 2·Base, …
	if b.ImmediateFirst {
		if b.crashes == 1 {
			return 0
		}
		waits--
	}
	d := b.Base
	for i := 1; i < waits && d < b.Cap; i++ {
		d *= 2
	}
	return min(d, b.Cap)
}

// Crashes returns the number of crashes in a row recorded so far.
func (b *Backoff) Crashes() int { return b.crashes }

// Reset forgets the crashes, e.g. when the container is replaced by a new spec.
func (b *Backoff) Reset() { b.crashes = 0 }
