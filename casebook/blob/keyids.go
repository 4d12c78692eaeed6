package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// keyIDsFile lists the ids of the keys that open every encrypted blob in the store,
// one a line. It lets a process refuse to start with a wrong or missing key, before it
// writes anything, instead of failing on the first download.
const keyIDsFile = "key-ids"

// ErrWrongKey marks a key that is not one the store's blobs are under.
var ErrWrongKey = errors.New("the blob key is not the key this store's blobs are encrypted under")

// ErrKeyMissing marks a store of encrypted blobs opened without a key.
var ErrKeyMissing = errors.New("blobs in this store are encrypted, but no key is configured")

// checkKey refuses a key the store does not know, or a missing key for a store that
// has encrypted blobs, and records the key's id on first use.
func (s *Store) checkKey(ctx context.Context) error {
	ids, err := s.KeyIDs(ctx)
	if err != nil {
		return err
	}
	switch {
	case s.key == nil && len(ids) > 0:
		return fmt.Errorf("%w (key id %s): set --blob-key-file", ErrKeyMissing, strings.Join(ids, ", "))
	case s.key == nil:
		return nil
	case len(ids) == 0:
		return s.SetKeyIDs(ctx, []string{s.key.id})
	case !slices.Contains(ids, s.key.id):
		return fmt.Errorf("%w: it has id %s, the store expects %s: check --blob-key-file", ErrWrongKey, s.key.id, strings.Join(ids, " or "))
	}
	return nil
}

// KeyIDs returns the ids of the keys that open every encrypted blob in the store.
func (s *Store) KeyIDs(ctx context.Context) ([]string, error) {
	return keyIDs(ctx, s.b)
}

func keyIDs(ctx context.Context, b Backend) ([]string, error) {
	data, err := b.ReadMeta(ctx, keyIDsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", b, err)
	}
	return strings.Fields(string(data)), nil
}

// SetKeyIDs records ids as the keys that open every encrypted blob (after a rekey
// pass), replacing the record atomically.
func (s *Store) SetKeyIDs(ctx context.Context, ids []string) error {
	if err := s.b.WriteMeta(ctx, keyIDsFile, []byte(strings.Join(ids, "\n")+"\n")); err != nil {
		return fmt.Errorf("blob store %s: key ids: %w", s.b, err)
	}
	return nil
}
