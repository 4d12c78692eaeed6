package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

func TestPutOpen(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("%PDF-1.7 hello")
	b, err := d.Put(ctx, bytes.NewReader(data), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if b.SHA256 != hex.EncodeToString(sum[:]) || b.Key != b.SHA256 || b.Size != int64(len(data)) || b.ContentType != "application/pdf" {
		t.Fatalf("blob = %+v", b)
	}
	again, err := d.Put(ctx, bytes.NewReader(data), 1<<10)
	if err != nil || again.Key != b.Key {
		t.Fatalf("second put = %+v, %v", again, err)
	}
	rc, err := d.Open(ctx, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	if removed, err := d.RemoveUnused(ctx, b.Key, time.Now().Add(time.Hour)); err != nil || !removed {
		t.Fatalf("RemoveUnused = %v, %v", removed, err)
	}
	if _, err := d.Open(ctx, b.Key); !errors.Is(err, casebook.ErrNotFound) {
		t.Errorf("open after remove: %v", err)
	}
}

func TestPutLimitLeavesNothing(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	_, err := d.Put(context.Background(), bytes.NewReader(make([]byte, 101)), 100)
	if !errors.Is(err, casebook.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	assertNoFiles(t, root)
}

// failingReader breaks off mid-stream, like a connection cut during an upload.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestPutInterruptedLeavesNothing(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	if _, err := d.Put(context.Background(), &failingReader{n: 50000}, 1<<20); err == nil {
		t.Fatal("want an error")
	}
	assertNoFiles(t, root)
}

// TestOpenClearsOnlyDeadTemps: several instances may share the directory, so a start
// removes its own host's leftovers and stale files, never another's write in progress.
func TestOpenClearsOnlyDeadTemps(t *testing.T) {
	host := hostName()
	dead := deadPid(t)
	cases := []struct {
		name string
		file string
		age  time.Duration
		kept bool
	}{
		{"this host, process gone", fmt.Sprintf("put.%s.%d.0000aaaa.1", host, dead), 0, false},
		{"this host, an earlier process with our pid", fmt.Sprintf("put.%s.%d.0000aaaa.1", host, os.Getpid()), 0, false},
		{"this process, a write in progress", tempPrefix("put") + "1", 0, true},
		{"this host, a live process", fmt.Sprintf("put.%s.1.0000aaaa.1", host), 0, true},
		{"another host, fresh", "put.elsewhere.1234.0000aaaa.1", 0, true},
		{"another host, stale", "put.elsewhere.1234.0000aaaa.1", StaleTemp + time.Minute, false},
		{"an unknown name, fresh", "put-crashed", 0, true},
		{"an unknown name, stale", "put-crashed", StaleTemp + time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if _, err := Open(root); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "tmp", c.file)
			os.WriteFile(p, []byte("partial"), 0o600)
			old := time.Now().Add(-c.age)
			os.Chtimes(p, old, old)
			if _, err := Open(root); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(p)
			if kept := err == nil; kept != c.kept {
				t.Errorf("kept = %v, want %v", kept, c.kept)
			}
		})
	}
}

// deadPid returns the id of a process that has exited.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot start a process:", err)
	}
	return cmd.Process.Pid
}

func TestOpenRejectsBadKeys(t *testing.T) {
	d, _ := Open(t.TempDir())
	for _, k := range []string{"", "../../etc/passwd", "ZZ", string(bytes.Repeat([]byte("g"), 64))} {
		if _, err := d.Open(context.Background(), k); !errors.Is(err, casebook.ErrNotFound) {
			t.Errorf("Open(%q) = %v", k, err)
		}
	}
}

// TestPutMemoryFlat streams 64 MiB through Put and checks the heap does not grow with it.
func TestPutMemoryFlat(t *testing.T) {
	d, _ := Open(t.TempDir())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := d.Put(context.Background(), io.LimitReader(zeros{}, 64<<20), 128<<20); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 4<<20 {
		t.Errorf("allocated %d bytes to store 64 MiB", grew)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func assertNoFiles(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return nil
	})
}
