package blob

import (
	"context"
	"fmt"

	"github.com/casebookhq/casebook/casebook"
)

// Plaintext reports whether the blob named key is stored unencrypted.
func (s *Store) Plaintext(ctx context.Context, key string) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	f, err := s.b.Open(ctx, key, 0, int64(len(magic)))
	if err != nil {
		return false, err
	}
	defer f.Close()
	p := &peekReader{r: f}
	enc := p.startsWith(magic)
	if p.err != nil {
		return false, fmt.Errorf("blob %s: %w", key, p.err)
	}
	return !enc, nil
}

// Rewrap wraps the data key of the encrypted blob named key under to as well, in the
// slot the store's own key does not use, and reports whether it wrote anything; the
// content is not touched. When to is the store's key, the other slot is cleared
// instead: that is how the last step of a rotation removes the old key's wrapping.
// Plaintext blobs are left alone (false, nil).
func (s *Store) Rewrap(ctx context.Context, key string, to *Key) (bool, error) {
	if s.key == nil {
		return false, fmt.Errorf("blob rewrap: %w: no current key", ErrNoKey)
	}
	if plain, err := s.Plaintext(ctx, key); err != nil || plain {
		return false, err
	}
	f, err := s.b.Open(ctx, key, 0, int64(headerSize))
	if err != nil {
		return false, err
	}
	h, err := readHeader(f)
	f.Close()
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	dk, err := h.dataKey(append([]*Key{to}, s.keys...))
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	keep := h.find(s.key.id)
	var want header
	switch {
	case to.Equal(s.key):
		// Keep the current key's slot alone.
		want[0] = wrapKeyIfMissing(h, keep, to, dk)
	case keep < 0:
		// Written under some other key this store can open: wrap under both.
		want = header{wrapKey(s.key, dk, h.maxGen()+1), wrapKey(to, dk, h.maxGen()+2)}
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
	if err := s.b.Patch(ctx, key, slotPatches(h, want)); err != nil {
		return false, fmt.Errorf("blob %s: rewrap: %w", key, err)
	}
	return true, nil
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

// slotPatches are the slots that differ between old and want, one patch each: a
// backend that writes in place makes each durable before the next, so a crash tears
// at most one slot and the other still opens the blob.
func slotPatches(old, want header) []Patch {
	var ps []Patch
	for i := range want {
		if old[i].keyID == want[i].keyID && old[i].gen == want[i].gen {
			continue
		}
		ps = append(ps, Patch{Off: int64(len(magic) + i*slotSize), Data: want[i].encode()})
	}
	return ps
}
