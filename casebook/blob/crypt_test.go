package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

func readAll(t *testing.T, d *Store, key string) ([]byte, error) {
	t.Helper()
	rc, err := d.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestEncryptedRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{1, 100, segmentSize - 16 - 40, segmentSize - 16, segmentSize, 3*segmentSize + 17, 1 << 20} {
		d, err := Open(t.TempDir(), NewKey())
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		rand.Read(data)
		b, err := d.Put(ctx, bytes.NewReader(data), 2<<20)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if b.SHA256 != hex.EncodeToString(sum[:]) || b.Size != int64(size) {
			t.Fatalf("size %d: blob = %+v", size, b)
		}
		if b.Key == b.SHA256 {
			t.Errorf("size %d: an encrypted blob is named by its plain SHA-256", size)
		}
		raw, _ := os.ReadFile(d.path(b.Key))
		if bytes.Contains(raw, data[:min(size, 64)]) && size >= 16 {
			t.Errorf("size %d: plaintext visible in the stored file", size)
		}
		got, err := readAll(t, d, b.Key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: read back %d bytes, %v", size, len(got), err)
		}
		again, err := d.Put(ctx, bytes.NewReader(data), 2<<20)
		if err != nil || again.Key != b.Key {
			t.Errorf("size %d: same content stored under %s, then %s (%v)", size, b.Key, again.Key, err)
		}
	}
}

// TestDamagedRefused alters or cuts an encrypted blob in every way that matters and
// checks that reading it fails with ErrDamaged instead of yielding bytes as if whole.
func TestDamagedRefused(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 3*segmentSize+1000)
	rand.Read(data)
	cases := []struct {
		name  string
		alter func(b []byte) []byte
	}{
		{"flipped byte in the first segment", func(b []byte) []byte { b[headerSize+100] ^= 1; return b }},
		{"flipped byte in the last segment", func(b []byte) []byte { b[len(b)-20] ^= 1; return b }},
		{"flipped byte in the wrapped key", func(b []byte) []byte { b[len(magic)+20] ^= 1; return b }},
		{"flipped byte in the stream header", func(b []byte) []byte { b[headerSize+5] ^= 1; return b }},
		{"cut in the last segment", func(b []byte) []byte { return b[:len(b)-10] }},
		{"cut at a segment boundary", func(b []byte) []byte { return b[:headerSize+40+2*segmentSize] }},
		{"cut one byte into a segment", func(b []byte) []byte { return b[:headerSize+40+2*segmentSize+1] }},
		{"cut after the stream header", func(b []byte) []byte { return b[:headerSize+40] }},
		{"cut in the header", func(b []byte) []byte { return b[:headerSize-3] }},
		{"segments swapped", func(b []byte) []byte {
			s := headerSize + 40
			one := bytes.Clone(b[s : s+segmentSize])
			copy(b[s:], b[s+segmentSize:s+2*segmentSize])
			copy(b[s+segmentSize:], one)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Open(t.TempDir(), NewKey())
			b, err := d.Put(ctx, bytes.NewReader(data), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			p := d.path(b.Key)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, tc.alter(raw), 0o600)
			got, err := readAll(t, d, b.Key)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("read %d of %d bytes, err = %v; want ErrDamaged", len(got), len(data), err)
			}
		})
	}
}

func TestKeyChecks(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	k := NewKey()
	d, err := Open(root, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, bytes.NewReader([]byte("hello")), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, NewKey()); !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := Open(root); !errors.Is(err, ErrKeyMissing) {
		t.Errorf("no key: %v", err)
	}
	if _, err := Open(root, k); err != nil {
		t.Errorf("right key: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	b64 := base64.StdEncoding.EncodeToString(raw)
	good := [][]byte{raw, []byte(b64), []byte(b64 + "\n"), []byte("  " + b64 + "\r\n")}
	for _, in := range good {
		k, err := ParseKey(in)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", in, err)
		}
		if want, _ := ParseKey(raw); !k.Equal(want) || k.ID() != want.ID() {
			t.Errorf("ParseKey(%q) is another key", in)
		}
	}
	bad := [][]byte{nil, []byte("short"), raw[:31], []byte(base64.StdEncoding.EncodeToString(raw[:16])), make([]byte, KeySize), []byte("not base64 at all, but long enough to be 44 c")}
	for _, in := range bad {
		if _, err := ParseKey(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadKey", in, err)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing key file was accepted")
	}
}

func TestPlaintextStaysReadable(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	plain, _ := Open(root)
	old, err := plain.Put(ctx, bytes.NewReader([]byte("%PDF-1.4 from before the key")), 100)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(root, NewKey())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, d, old.Key); err != nil || string(got) != "%PDF-1.4 from before the key" {
		t.Errorf("plaintext blob read as %q, %v", got, err)
	}
	if p, err := d.Plaintext(ctx, old.Key); err != nil || !p {
		t.Errorf("Plaintext = %v, %v", p, err)
	}
}

// TestRewrap rotates a store from one key to another and back to one key, checking
// that the content is never rewritten and the blob opens under the keys it should.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	oldKey, newKey := NewKey(), NewKey()
	d, _ := Open(root, oldKey)
	data := bytes.Repeat([]byte("scan "), 50000)
	b, err := d.Put(ctx, bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(d.path(b.Key))

	both, _ := Open(root, oldKey, newKey)
	for i, want := range []bool{true, false} {
		changed, err := both.Rewrap(ctx, b.Key, newKey)
		if err != nil || changed != want {
			t.Fatalf("rewrap %d: changed %v, %v; want %v", i, changed, err, want)
		}
	}
	both.SetKeyIDs(context.Background(), []string{oldKey.ID(), newKey.ID()})
	for _, k := range []*Key{oldKey, newKey} {
		dk, err := Open(root, k)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(t, dk, b.Key); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("key %s: %v", k.ID(), err)
		}
	}
	after, _ := os.ReadFile(d.path(b.Key))
	if !bytes.Equal(before[headerSize:], after[headerSize:]) {
		t.Error("rewrap rewrote the content")
	}

	onlyNew, _ := Open(root, newKey)
	if changed, err := onlyNew.Rewrap(ctx, b.Key, newKey); err != nil || !changed {
		t.Fatalf("dropping the old wrapping: %v, %v", changed, err)
	}
	old, _ := Open(root, oldKey)
	if _, err := readAll(t, old, b.Key); !errors.Is(err, ErrNoKey) {
		t.Errorf("old key still opens the blob after the last pass: %v", err)
	}
	if got, err := readAll(t, onlyNew, b.Key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("new key after the last pass: %v", err)
	}
}

// TestEncryptedMemoryFlat streams 25 MiB through an encrypting Put and back, and
// checks the live heap stays small.
func TestEncryptedMemoryFlat(t *testing.T) {
	d, _ := Open(t.TempDir(), NewKey())
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := d.Put(ctx, io.LimitReader(zeros{}, 25<<20), 26<<20)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(ctx, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	peak := uint64(0)
	buf := make([]byte, 32<<10)
	for {
		_, err := rc.Read(buf)
		if err != nil {
			break
		}
		var m runtime.MemStats
		if peak == 0 {
			runtime.ReadMemStats(&m)
			peak = m.HeapAlloc
		}
	}
	rc.Close()
	runtime.ReadMemStats(&after)
	if grew := int64(peak) - int64(before.HeapAlloc); grew > 2<<20 {
		t.Errorf("heap grew by %d bytes while reading 25 MiB", grew)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d bytes in all for 25 MiB", alloc)
	}
}

func TestRemoveUnusedPutsBackTouched(t *testing.T) {
	ctx := context.Background()
	d, _ := Open(t.TempDir(), NewKey())
	b, _ := d.Put(ctx, bytes.NewReader([]byte("shared bytes")), 100)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(d.path(b.Key), old, old)
	// A Put of the same bytes touches the blob after the sweep checked the rows:
	// RemoveUnused must see that and keep it.
	if _, err := d.Put(ctx, bytes.NewReader([]byte("shared bytes")), 100); err != nil {
		t.Fatal(err)
	}
	removed, err := d.RemoveUnused(ctx, b.Key, time.Now().Add(-24*time.Hour))
	if err != nil || removed {
		t.Fatalf("RemoveUnused = %v, %v; want kept", removed, err)
	}
	if _, err := readAll(t, d, b.Key); err != nil {
		t.Fatalf("blob lost: %v", err)
	}
	if _, err := d.Open(ctx, "00"); !errors.Is(err, casebook.ErrNotFound) {
		t.Error(err)
	}
}

// path is where a store in a directory keeps the blob named key.
func (s *Store) path(key string) string { return s.b.(*Dir).path(key) }
