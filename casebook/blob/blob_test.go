package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"casebook/casebook"
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
	// A temporary file left by a crash (no deferred cleanup ran) is cleared at start.
	os.WriteFile(filepath.Join(root, "tmp", "put-crashed"), []byte("partial"), 0o600)
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	assertNoFiles(t, root)
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
