package executor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

// TestRuntimeUnavailable tells a runtime that cannot be reached from a start the spec failed.
func TestRuntimeUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("%w: r/hello:v1: %w", ErrImagePull, errdefs.ErrUnavailable), true},
		{fmt.Errorf("%w: r/hello:v1: %w", ErrImagePull, context.DeadlineExceeded), true},
		{fmt.Errorf("%w: r/hello:v1: %w", ErrImagePull, errdefs.ErrNotFound), false},
		{fmt.Errorf("%w: configMap web missing", ErrConfig), false},
		{errors.New("exec format error"), false},
	} {
		if got := RuntimeUnavailable(tc.err); got != tc.want {
			t.Errorf("RuntimeUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
