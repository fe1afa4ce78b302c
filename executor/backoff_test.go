package executor

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name  string
		b     Backoff
		ran   []time.Duration // how long the container ran before each crash
		delay []time.Duration // the delays Next must return
	}{
		{
			name:  "kubelet schedule restarts at once, then doubles from 10s and stops at 5m",
			b:     DefaultBackoff(),
			ran:   []time.Duration{s, s, s, s, s, s, s, s, s},
			delay: []time.Duration{0, 10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 300 * s, 300 * s, 300 * s},
		},
		{
			name:  "ten minutes of running resets it",
			b:     DefaultBackoff(),
			ran:   []time.Duration{s, s, s, 10 * time.Minute, s},
			delay: []time.Duration{0, 10 * s, 20 * s, 0, 10 * s},
		},
		{
			name:  "just under ten minutes does not",
			b:     DefaultBackoff(),
			ran:   []time.Duration{s, s, 10*time.Minute - 1},
			delay: []time.Duration{0, 10 * s, 20 * s},
		},
		{
			name:  "without ImmediateFirst the first wait is Base",
			b:     Backoff{Base: 10 * s, Cap: 5 * time.Minute, ResetAfter: 10 * time.Minute},
			ran:   []time.Duration{s, s, s, 10 * time.Minute},
			delay: []time.Duration{10 * s, 20 * s, 40 * s, 10 * s},
		},
		{
			name:  "tests can shrink it",
			b:     Backoff{Base: 100 * time.Millisecond, Cap: 350 * time.Millisecond, ResetAfter: s},
			ran:   []time.Duration{0, 0, 0, 0, s, 0},
			delay: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			for i, ran := range tt.ran {
				if got := b.Next(ran); got != tt.delay[i] {
					t.Fatalf("crash %d (ran %v): delay %v, want %v", i+1, ran, got, tt.delay[i])
				}
			}
		})
	}
}

func TestBackoffCountsAndResets(t *testing.T) {
	b := DefaultBackoff()
	b.Next(0) // the first crash waits nothing
	// Many crashes must not overflow the doubling.
	for range 99 {
		if d := b.Next(0); d <= 0 || d > b.Cap {
			t.Fatalf("delay %v out of (0, %v]", d, b.Cap)
		}
	}
	if b.Crashes() != 100 {
		t.Errorf("Crashes = %d, want 100", b.Crashes())
	}
	b.Reset()
	if got := b.Next(0); got != 0 {
		t.Errorf("after Reset: %v, want 0 (at once)", got)
	}
}

func TestBackoffValidate(t *testing.T) {
	def := DefaultBackoff()
	if err := def.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, b := range []Backoff{
		{},
		{Base: time.Second, Cap: time.Millisecond, ResetAfter: time.Minute},
		{Base: time.Second, Cap: time.Minute},
	} {
		if err := b.Validate(); err == nil {
			t.Errorf("%+v validated", b)
		}
	}
}
