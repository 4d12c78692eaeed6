package postgres_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"casebook/casebook"
	"casebook/casebook/clamav"
	"casebook/casebook/clamav/clamdtest"
	"casebook/casebook/postgres"
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

func unreachable(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "tcp://" + addr
}

// syncBuffer is a log destination safe for the scanner goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
		addr    func(t *testing.T) string
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
		{name: "clamd unreachable", addr: unreachable, files: []casebook.File{file("scan.bin", clean)},
			want: casebook.ErrScanUnavailable},
		{name: "clamd drops the connection mid-stream", addr: func(t *testing.T) string { return srv.CutProxy(t, 100_000) },
			files: []casebook.File{file("scan.bin", clean)}, want: casebook.ErrScanUnavailable},
		{name: "clamd unreachable, allowed", addr: unreachable, allow: true, files: []casebook.File{file("scan.bin", clean)},
			logged: "file stored without a malware scan"},
		{name: "clamd drops mid-stream, allowed", addr: func(t *testing.T) string { return srv.CutProxy(t, 100_000) }, allow: true,
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
			var logs syncBuffer
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

// BenchmarkAddUpdateScan compares the write path with one 100 KB file, unscanned and
// scanned by a real clamd, in the same run:
//
//	go test -run '^$' -bench AddUpdateScan -benchtime 3s ./casebook/postgres/
func BenchmarkAddUpdateScan(b *testing.B) {
	srv := clamdtest.Start(b)
	att := make([]byte, 100_000)
	rand.Read(att)
	for _, mode := range []string{"Unscanned", "Scanned"} {
		b.Run(mode, func(b *testing.B) {
			f := newFixture(b)
			if mode == "Scanned" {
				f.scanned(b, srv.Addr, false, nil)
			}
			ctx := context.Background()
			b.SetBytes(int64(len(att)))
			run := rand.Text()
			i := 0
			for b.Loop() {
				i++
				copy(att, fmt.Sprintf("%020d", i))
				out, err := f.svc.AddUpdate(ctx, f.update(fmt.Sprint("bench-", run, i), file("scan.bin", att)))
				if err != nil || out.Result != casebook.ResultAdded {
					b.Fatal(out, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkAddUpdateScanLarge adds one 25 MiB file through the scanning write path
// and reports the peak growth of the live heap meanwhile (the bytes stream through a
// pipe to clamd while they go to the blob store, never held whole):
//
//	go test -run '^$' -bench AddUpdateScanLarge -benchtime 3x ./casebook/postgres/
func BenchmarkAddUpdateScanLarge(b *testing.B) {
	srv := clamdtest.Start(b)
	f := newFixture(b)
	c, err := clamav.Parse(srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{Scanner: c})
	const size = 25 << 20
	ctx := context.Background()
	run := rand.Text()
	var peak uint64
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		body := &patternReader{left: size, seed: byte(i)}
		runtime.GC()
		base := heapLive()
		stop, sampled := make(chan struct{}), make(chan uint64)
		go func() {
			var top uint64
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					sampled <- top
					return
				case <-t.C:
					if h := heapLive(); h > base && h-base > top {
						top = h - base
					}
				}
			}
		}()
		b.StartTimer()
		out, err := f.svc.AddUpdate(ctx, f.update(fmt.Sprint("large-", run, i), casebook.File{Name: "scan.bin", Body: body}))
		b.StopTimer()
		close(stop)
		peak = max(peak, <-sampled)
		if err != nil || out.Result != casebook.ResultAdded || out.Attachments[0].Size != size {
			b.Fatal(out, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_growth_MiB")
}

// patternReader yields left bytes of a pattern without holding them.
type patternReader struct {
	left int
	seed byte
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.left)
	for i := range n {
		b[i] = byte(p.left-i) ^ p.seed
	}
	p.left -= n
	return n, nil
}

// heapLive is the heap held by live and not yet swept objects.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
