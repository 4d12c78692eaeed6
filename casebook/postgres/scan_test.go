package postgres_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/syncbuf"
)

// scanned replaces the fixture's service with one that scans through clamd at addr.
func (f *fixture) scanned(t testing.TB, addr string, allow bool, log *slog.Logger) {
	t.Helper()
	c, err := clamav.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{MaxFileSize: 1 << 20,
		Scanner: c.WithTimeout(2 * time.Second), AllowUnscanned: allow, MalwareLog: f.st, Logger: log})
}

func eicarZip(t testing.TB) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("eicar.com")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(clamdtest.EICAR))
	zw.Close()
	return b.Bytes()
}

// TestAddUpdateScan runs the write path against a real clamd: an infected file, alone
// or inside a zip, fails the whole update with its signature, stores no row and leaves
// an audit row; a scanner that cannot answer fails closed unless allowed.
func TestAddUpdateScan(t *testing.T) {
	srv := clamdtest.Start(t)
	clean := make([]byte, 400_000)
	rand.Read(clean)
	tests := []struct {
		name    string
		addr    func(t testing.TB) string
		allow   bool
		files   []casebook.File
		want    error
		sig     string
		audited bool
		logged  string
	}{
		{name: "clean", files: []casebook.File{file("scan.bin", clean)}},
		{name: "EICAR", files: []casebook.File{file("eicar.com", []byte(clamdtest.EICAR))},
			want: casebook.ErrInfected, sig: clamdtest.Signature, audited: true},
		{name: "EICAR in a zip after a clean file", files: []casebook.File{file("scan.bin", clean), file("results.zip", eicarZip(t))},
			want: casebook.ErrInfected, sig: clamdtest.Signature, audited: true},
		{name: "clamd unreachable", addr: clamdtest.Unreachable, files: []casebook.File{file("scan.bin", clean)},
			want: casebook.ErrScanUnavailable},
		{name: "clamd drops the connection mid-stream", addr: func(t testing.TB) string { return srv.CutProxy(t, 100_000) },
			files: []casebook.File{file("scan.bin", clean)}, want: casebook.ErrScanUnavailable},
		{name: "clamd unreachable, allowed", addr: clamdtest.Unreachable, allow: true, files: []casebook.File{file("scan.bin", clean)},
			logged: "file stored without a malware scan"},
		{name: "clamd drops mid-stream, allowed", addr: func(t testing.TB) string { return srv.CutProxy(t, 100_000) }, allow: true,
			files: []casebook.File{file("scan.bin", clean)}, logged: "file stored without a malware scan"},
		{name: "too large is still too large", files: []casebook.File{file("big.bin", make([]byte, 2<<20))},
			want: casebook.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			addr := srv.Addr
			if tt.addr != nil {
				addr = tt.addr(t)
			}
			var logs syncbuf.Buffer
			f.scanned(t, addr, tt.allow, slog.New(slog.NewTextHandler(&logs, nil)))
			out, err := f.svc.AddUpdate(ctx, f.update("m1", tt.files...))
			if !errors.Is(err, tt.want) || (tt.want == nil && out.Result != casebook.ResultAdded) {
				t.Fatalf("AddUpdate = %+v, %v; want %v", out, err, tt.want)
			}
			sig := ""
			if inf := (*casebook.InfectedError)(nil); errors.As(err, &inf) {
				sig = inf.Signature
			}
			if sig != tt.sig {
				t.Errorf("signature = %q, want %q", sig, tt.sig)
			}
			updates := count(t, f.st, `SELECT count(*) FROM updates`)
			attachments := count(t, f.st, `SELECT count(*) FROM attachments`)
			outbox := count(t, f.st, `SELECT count(*) FROM outbox`)
			if tt.want != nil && updates+attachments+outbox != 0 {
				t.Errorf("refused update left %d updates, %d attachments, %d outbox rows", updates, attachments, outbox)
			}
			if tt.want == nil && attachments != len(tt.files) {
				t.Errorf("attachments = %d, want %d", attachments, len(tt.files))
			}
			audit, err := f.st.AuditLog(ctx, postgres.AuditFilter{Object: f.svc.Refs().Format(f.c.Number)})
			if err != nil {
				t.Fatal(err)
			}
			if tt.audited {
				if len(audit) != 1 || audit[0].Action != postgres.AuditActionMalware ||
					!strings.Contains(audit[0].Outcome, "refused from email: "+tt.sig) || audit[0].OrgID == nil || *audit[0].OrgID != f.org.ID {
					t.Errorf("audit = %+v, want one malware row", audit)
				}
			} else if len(audit) != 0 {
				t.Errorf("audit = %+v, want none", audit)
			}
			if !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("log lacks %q:\n%s", tt.logged, logs.String())
			}
		})
	}
}
