package gossip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = bytes.Repeat([]byte{0x11}, 32)
	otherKey = bytes.Repeat([]byte{0x22}, 32)
)

func TestProfilesValidate(t *testing.T) {
	for name, profile := range map[string]func() Config{
		"DefaultConfig": DefaultConfig, "FastConfig": FastConfig, "SafeConfig": SafeConfig,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := profile()
			cfg.NodeName = "n1" // the host name may be empty in a container
			cfg.Identity, cfg.Verifier = clusterCA.id("n1"), clusterCA.trusts()
			if err := cfg.Validate(); !errors.Is(err, ErrNoKey) {
				t.Fatalf("without a key: got %v, want ErrNoKey", err)
			}
			cfg.SecretKeys = [][]byte{testKey}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("with a key: %v", err)
			}
			cfg.SecretKeys = nil
			cfg.AllowPlaintext = true
			if err := cfg.Validate(); err != nil {
				t.Fatalf("with AllowPlaintext: %v", err)
			}
		})
	}
}

// TestProfilesOrdered checks the documented trade-off: Fast detects sooner
// than Default, which detects sooner than Safe.
func TestProfilesOrdered(t *testing.T) {
	suspicion := func(c Config) time.Duration { return time.Duration(c.SuspicionMult) * c.ProbeInterval }
	fast, def, safe := FastConfig(), DefaultConfig(), SafeConfig()
	if !(suspicion(fast) < suspicion(def) && suspicion(def) < suspicion(safe)) {
		t.Fatalf("suspicion times not ordered: fast %v, default %v, safe %v", suspicion(fast), suspicion(def), suspicion(safe))
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   error
		field  string
	}{
		{"empty name", func(c *Config) { c.NodeName = "" }, ErrInvalidConfig, "NodeName"},
		{"long name", func(c *Config) { c.NodeName = strings.Repeat("n", maxNameLen+1) }, ErrInvalidConfig, "NodeName"},
		{"bind addr not IP", func(c *Config) { c.BindAddr = "localhost" }, ErrInvalidConfig, "BindAddr"},
		{"advertise addr not IP", func(c *Config) { c.AdvertiseAddr = "x" }, ErrInvalidConfig, "AdvertiseAddr"},
		{"port range", func(c *Config) { c.BindPort = 70000 }, ErrInvalidConfig, "BindPort"},
		{"seed without port", func(c *Config) { c.Seeds = []string{"10.0.0.1"} }, ErrInvalidConfig, "Seeds"},
		{"short key", func(c *Config) { c.SecretKeys = [][]byte{[]byte("short")} }, ErrBadKey, "SecretKeys[0]"},
		{"second key bad", func(c *Config) { c.SecretKeys = [][]byte{testKey, make([]byte, 20)} }, ErrBadKey, "SecretKeys[1]"},
		{"probe timeout above interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, ErrInvalidConfig, "ProbeTimeout"},
		{"zero push pull", func(c *Config) { c.PushPullInterval = 0 }, ErrInvalidConfig, "PushPullInterval"},
		{"zero suspicion mult", func(c *Config) { c.SuspicionMult = 0 }, ErrInvalidConfig, "SuspicionMult"},
		{"backoff max below min", func(c *Config) { c.JoinBackoffMax = c.JoinBackoffMin / 2 }, ErrInvalidConfig, "JoinBackoffMax"},
		{"tiny packets", func(c *Config) { c.UDPBufferSize = 100 }, ErrInvalidConfig, "UDPBufferSize"},
		{"negative retention", func(c *Config) { c.DeadRetention = -1 }, ErrInvalidConfig, "DeadRetention"},
		{"meta too large", func(c *Config) { c.Meta.Labels = map[string]string{"k": strings.Repeat("v", 600)} }, ErrMetaTooLarge, "Meta"},
		{"no certificate", func(c *Config) { c.Identity = nil }, ErrInvalidConfig, "Identity"},
		{"certificate of another node", func(c *Config) { c.Identity = clusterCA.id("n2") }, ErrInvalidConfig, `names "n2"`},
		{"no CA", func(c *Config) { c.Verifier = nil }, ErrInvalidConfig, "Verifier"},
		{"hostname label of another node", func(c *Config) { c.Meta.Labels = map[string]string{"kubernetes.io/hostname": "n2"} }, ErrBadMeta, "hostname"},
		{"os labels disagree", func(c *Config) {
			c.Meta.Labels = map[string]string{"kubernetes.io/os": "linux", "beta.kubernetes.io/os": "windows"}
		}, ErrBadMeta, "disagree"},
		{"absurd CPU", func(c *Config) { c.Meta.MilliCPU = 1 << 50 }, ErrBadMeta, "CPU"},
		{"negative memory", func(c *Config) { c.Meta.MemoryBytes = -1 }, ErrBadMeta, "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NodeName = "n1"
			cfg.SecretKeys = [][]byte{testKey}
			cfg.Identity, cfg.Verifier = clusterCA.id("n1"), clusterCA.trusts()
			tt.modify(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name field %s", err, tt.field)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		wantLen int
		wantErr bool
	}{
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), 16, false},
		{base64.StdEncoding.EncodeToString(make([]byte, 24)), 24, false},
		{base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n", 32, false}, // as read from a file
		{base64.StdEncoding.EncodeToString(make([]byte, 31)), 0, true},
		{"not base64!", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			key, err := ParseKey(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadKey) {
					t.Fatalf("got %v, want ErrBadKey", err)
				}
				return
			}
			if err != nil || len(key) != tt.wantLen {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(key), err, tt.wantLen)
			}
		})
	}
}

func TestMemberlistLogGoesToSlogDebug(t *testing.T) {
	var rec recorder
	w := memberlistLog{slog.New(&rec)}
	if _, err := w.Write([]byte("[WARN] memberlist: Refuting a suspect message (from: b)\n")); err != nil {
		t.Fatal(err)
	}
	got := rec.records()
	if len(got) != 1 || got[0].Level != slog.LevelDebug ||
		got[0].Message != "memberlist: Refuting a suspect message (from: b)" {
		t.Fatalf("got %+v", got)
	}
	var level string
	got[0].Attrs(func(a slog.Attr) bool {
		if a.Key == "memberlist_level" {
			level = a.Value.String()
		}
		return true
	})
	if level != "WARN" {
		t.Fatalf("memberlist_level = %q, want WARN", level)
	}
}
