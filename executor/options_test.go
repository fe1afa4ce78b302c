package executor

import (
	"strings"
	"testing"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := defaultConfig()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"empty socket", WithSocket(""), "socket"},
		{"bad namespace", WithNamespace("no spaces"), "namespace"},
		{"relative state dir", WithStateDir("state"), "state dir"},
		{"relative runc root", WithRuncRoot("runc"), "runc root"},
		{"relative netns", WithNetNS("netns/x"), "netns"},
		{"zero log cap", WithLogMaxBytes(0), "log cap"},
		{"no parallel starts", WithMaxParallelStarts(0), "parallel"},
		{"no logger", WithLogger(nil), "logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			tt.opt(&cfg)
			if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate = %v, want an error about %s", err, tt.want)
			}
		})
	}
}
