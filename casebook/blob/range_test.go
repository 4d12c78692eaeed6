package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

// checkRanges stores content of several sizes in st and reads ranges back across
// segment boundaries.
func checkRanges(t *testing.T, st *Store) {
	ctx := context.Background()
	for _, size := range []int{1, firstPlainSeg, firstPlainSeg + 1, firstPlainSeg + plainSeg, 3*segmentSize + 17} {
		data := make([]byte, size)
		rand.Read(data)
		b, err := st.Put(ctx, bytes.NewReader(data), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(size)
		ranges := [][2]int64{{0, n}, {0, 1}, {n - 1, 1}, {n, 0}, {n / 2, n - n/2}, {n / 3, n / 3}}
		if size > firstPlainSeg {
			ranges = append(ranges, [2]int64{firstPlainSeg - 1, 2}, [2]int64{firstPlainSeg, n - firstPlainSeg})
		}
		for _, r := range ranges {
			rc, err := st.OpenRange(ctx, b.Key, r[0], r[1])
			if err != nil {
				t.Fatalf("size %d, range %v: %v", size, r, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("size %d, range %v: read %d bytes, %v", size, r, len(got), err)
			}
		}
		if _, err := st.OpenRange(ctx, b.Key, n, 1); !errors.Is(err, ErrRange) {
			t.Errorf("size %d: a range past the end: %v, want ErrRange", size, err)
		}
	}
}

func TestOpenRange(t *testing.T) {
	for _, c := range []struct {
		name string
		key  *Key
	}{{"plaintext", nil}, {"encrypted", NewKey()}} {
		t.Run(c.name, func(t *testing.T) {
			st, err := Open(t.TempDir(), c.key)
			if err != nil {
				t.Fatal(err)
			}
			checkRanges(t, st)
		})
	}
}
