package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"casebook/casebook"
)

// Plaintext reports whether the blob named key is stored unencrypted.
func (d *Dir) Plaintext(ctx context.Context, key string) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blob %s: %w", key, casebook.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	defer f.Close()
	enc, err := isEncrypted(f)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	return !enc, nil
}

// Rewrap wraps the data key of the encrypted blob named key under to as well, in the
// slot the store's own key does not use, and reports whether it wrote anything; the
// content is not touched. When to is the store's key, the other slot is cleared
// instead: that is how the last step of a rotation removes the old key's wrapping.
// Plaintext blobs are left alone (false, nil).
func (d *Dir) Rewrap(ctx context.Context, key string, to *Key) (bool, error) {
	if d.key == nil {
		return false, fmt.Errorf("blob rewrap: %w: no current key", ErrNoKey)
	}
	if !validKey(key) {
		return false, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	f, err := os.OpenFile(d.path(key), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blob %s: %w", key, casebook.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	defer f.Close()
	if enc, err := isEncrypted(f); err != nil || !enc {
		return false, err
	}
	h, err := readHeader(f)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	dk, err := h.dataKey(append([]*Key{to}, d.keys...))
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	keep := h.find(d.key.id)
	var want header
	switch {
	case to.Equal(d.key):
		// Keep the current key's slot alone.
		want[0] = wrapKeyIfMissing(h, keep, to, dk)
	case keep < 0:
		// Written under some other key this store can open: wrap under both.
		want = header{wrapKey(d.key, dk, h.maxGen()+1), wrapKey(to, dk, h.maxGen()+2)}
	default:
		want = h
		target := 1 - keep
		if i := h.find(to.id); i >= 0 {
			target = i
			if i != keep {
				return false, nil // already wrapped under both
			}
		}
		want[target] = wrapKey(to, dk, h.maxGen()+1)
	}
	if want.sameKeys(h) {
		return false, nil
	}
	return true, d.writeHeader(f, key, h, want)
}

// wrapKeyIfMissing returns the slot at i when it exists, else a new wrapping under k.
func wrapKeyIfMissing(h header, i int, k *Key, dk []byte) slot {
	if i >= 0 {
		return h[i]
	}
	return wrapKey(k, dk, h.maxGen()+1)
}

func (h header) maxGen() uint32 { return max(h[0].gen, h[1].gen) }

// sameKeys reports whether h and o hold wrappings under the same key ids in the
// same slots.
func (h header) sameKeys(o header) bool {
	return h[0].keyID == o[0].keyID && h[1].keyID == o[1].keyID && h[0].gen == o[0].gen && h[1].gen == o[1].gen
}

// writeHeader rewrites the slots of f that differ between old and want, one at a
// time with an fsync after each, so a crash tears at most one slot and the other
// still opens the blob.
func (d *Dir) writeHeader(f *os.File, key string, old, want header) error {
	for i := range want {
		if old[i].keyID == want[i].keyID && old[i].gen == want[i].gen {
			continue
		}
		if _, err := f.WriteAt(want[i].encode(), int64(len(magic)+i*slotSize)); err != nil {
			return fmt.Errorf("blob %s: rewrap: %w", key, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("blob %s: rewrap: fsync: %w", key, err)
		}
	}
	return nil
}
