package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestScanSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"address without scheme", []string{"case", "list", "--clamd", "127.0.0.1:3310"}, 2, "want tcp://HOST:PORT or unix:///PATH"},
		{"unknown policy", []string{"case", "list", "--scan-unavailable", "maybe"}, 2, `--scan-unavailable "maybe" must be block or allow`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.says) {
				t.Errorf("exit %d, want %d saying %q: %s", code, tt.code, tt.says, stderr.String())
			}
		})
	}
}

// TestDoctorClamd runs the clamd check from the serve config against a real clamd.
func TestDoctorClamd(t *testing.T) {
	srv := clamdtest.Start(t)
	down := clamdtest.Unreachable(t)
	tests := []struct {
		name  string
		clamd string
		code  int
		want  string
	}{
		// The test clamd has only local signatures: a warning, which does not fail.
		{"reachable", srv.Addr, 0, "warn  clamd     clamd "},
		{"down", down, 1, "FAIL  clamd     no answer from clamd at " + down},
		{"not configured", "", 0, "warn  clamd     not configured (--clamd)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", pgtest.URL(t), "--data-dir", t.TempDir(), "--clamd", tt.clamd}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("exit %d, want %d; report lacks %q:\n%s%s", code, tt.code, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}
