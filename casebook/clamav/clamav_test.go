package clamav_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
)

func client(t *testing.T) *clamav.Client {
	t.Helper()
	c, err := clamav.Parse(clamdtest.Start(t).Addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zipOf wraps files (name → content) in a zip archive, deflated or stored.
func zipOf(t *testing.T, method uint16, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func nestedZip(t *testing.T, depth int) []byte {
	data := []byte(clamdtest.EICAR)
	for range depth {
		data = zipOf(t, zip.Deflate, map[string][]byte{"inner": data})
	}
	return data
}

func gzipOf(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// TestScan runs files past a real clamd. The archive rows are what the README states
// about archive coverage: clamd unpacks zip (stored or deflated), gzip and archives
// nested up to its MaxRecursion (17 by default).
func TestScan(t *testing.T) {
	c := client(t)
	clean := make([]byte, 300_000) // several INSTREAM chunks
	rand.Read(clean)
	eicar := []byte(clamdtest.EICAR)
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"clean", clean, ""},
		{"empty", nil, ""},
		{"text", []byte("lab results attached\n"), ""},
		{"EICAR", eicar, clamdtest.Signature},
		{"EICAR in a zip, deflated", zipOf(t, zip.Deflate, map[string][]byte{"report.pdf": clean[:1000], "eicar.com": eicar}), clamdtest.Signature},
		{"EICAR in a zip, stored", zipOf(t, zip.Store, map[string][]byte{"eicar.com": eicar}), clamdtest.Signature},
		{"EICAR in a zip in a zip", nestedZip(t, 2), clamdtest.Signature},
		{"EICAR 16 zips deep", nestedZip(t, 16), clamdtest.Signature},
		{"EICAR gzipped", gzipOf(eicar), clamdtest.Signature},
		// Beyond MaxRecursion clamd stops unpacking and, without AlertExceedsMax,
		// calls the file clean: the README tells operators to turn that alert on.
		{"EICAR 17 zips deep passes by default", nestedZip(t, 17), ""},
		{"EICAR after other bytes is another file", append(clean[:100:100], eicar...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Scan(context.Background(), bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("signature = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScanConcurrent(t *testing.T) {
	c := client(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			body, want := []byte("clean file"), ""
			if i%2 == 0 {
				body, want = []byte(clamdtest.EICAR), clamdtest.Signature
			}
			got, err := c.Scan(context.Background(), bytes.NewReader(body))
			if err != nil || got != want {
				t.Errorf("scan %d = %q, %v; want %q", i, got, err, want)
			}
		})
	}
	wg.Wait()
}

func TestPingVersion(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Only custom signatures are loaded: the answer has no database version or date.
	if !strings.HasPrefix(v, "ClamAV ") {
		t.Errorf("version = %q", v)
	}
}

// failingReader returns some bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

// TestScanSourceFails checks that a failure of the file's own source is reported as
// itself, not as a scanner outage.
func TestScanSourceFails(t *testing.T) {
	c := client(t)
	boom := errors.New("upload cut")
	_, err := c.Scan(context.Background(), &failingReader{n: 200_000, err: boom})
	if !errors.Is(err, boom) || errors.Is(err, casebook.ErrScanUnavailable) {
		t.Fatalf("err = %v, want the source's error only", err)
	}
}

// fakeClamd accepts connections and answers each with answer after reading what
// the client sends (nothing when answer is empty: a hung daemon).
func fakeClamd(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer conn.Close()
				if answer != "" {
					conn.Read(make([]byte, 64))
					io.WriteString(conn, answer+"\x00")
					return
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, conn)
			})
		}
	}()
	return "tcp://" + l.Addr().String()
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "tcp://" + addr
}

// TestScanUnavailable checks every way clamd can fail to give a verdict comes back as
// casebook.ErrScanUnavailable, promptly, whatever the file.
func TestScanUnavailable(t *testing.T) {
	real := clamdtest.Start(t)
	big := make([]byte, 2<<20)
	rand.Read(big)
	tests := []struct {
		name    string
		addr    string
		body    []byte
		ctx     func() (context.Context, context.CancelFunc)
		contain string
	}{
		{name: "unreachable", addr: closedPort(t), body: []byte(clamdtest.EICAR), contain: "connection refused"},
		{name: "no such socket", addr: "unix:///nonexistent/clamd.ctl", body: []byte("x"), contain: "no such file"},
		{name: "connection dropped mid-stream", addr: real.CutProxy(t, 256<<10), body: big},
		{name: "hangs: timeout", addr: fakeClamd(t, ""), body: []byte("x"), contain: "read verdict"},
		{name: "error answer", addr: fakeClamd(t, "INSTREAM size limit exceeded. ERROR"), body: []byte("x"), contain: "StreamMaxLength"},
		{name: "garbled answer", addr: fakeClamd(t, "stream: maybe"), body: []byte("x"), contain: "maybe"},
		{name: "caller gives up", addr: fakeClamd(t, ""), body: []byte("x"), contain: "deadline exceeded",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := clamav.Parse(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			c = c.WithTimeout(time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			sig, err := c.Scan(ctx, bytes.NewReader(tt.body))
			if !errors.Is(err, casebook.ErrScanUnavailable) || sig != "" {
				t.Fatalf("Scan = %q, %v; want ErrScanUnavailable", sig, err)
			}
			if !strings.Contains(err.Error(), tt.contain) {
				t.Errorf("error %q does not say %q", err, tt.contain)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"tcp://127.0.0.1:3310", "tcp://127.0.0.1:3310", true},
		{"tcp://[::1]:3310", "tcp://[::1]:3310", true},
		{"unix:///run/clamav/clamd.ctl", "unix:///run/clamav/clamd.ctl", true},
		{"tcp://127.0.0.1", "", false},
		{"127.0.0.1:3310", "", false},
		{"unix://run/clamd.ctl", "", false},
		{"http://127.0.0.1:3310", "", false},
		{"tcp://127.0.0.1:3310/x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := clamav.Parse(tt.raw)
			if (err == nil) != tt.ok {
				t.Fatalf("Parse(%q) error = %v", tt.raw, err)
			}
			if err == nil && c.String() != tt.want {
				t.Errorf("String() = %q, want %q", c, tt.want)
			}
		})
	}
}
