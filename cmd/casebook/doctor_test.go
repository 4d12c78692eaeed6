package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"casebook/casebook/postgres/pgtest"
)

func TestDoctorCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		db   string
		code int
		want []string
	}{
		{"working", pgtest.URL(t), 0, []string{"ok    postgres", "ok    clock", "ok    blobs"}},
		{"database down", "postgres://postgres:pw@" + closed + "/casebook?sslmode=disable", 1, []string{"FAIL  postgres  cannot reach PostgreSQL at " + closed, "ok    blobs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"doctor", "--database-url", tt.db, "--data-dir", t.TempDir(), "--admin", ""}, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), ":pw@") {
				t.Errorf("report shows the database password:\n%s", stdout.String())
			}
		})
	}
}
