package executor

import "time"

// WithPostStartTimeout sets the bound on postStart hooks, so that a test need not wait the
// default two minutes to see a hook cut off.
func WithPostStartTimeout(d time.Duration) Option {
	return func(c *config) { c.postStartTimeout = d }
}
