package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
func (d *Dir) checkKey() error {
	ids, err := d.KeyIDs()
	if err != nil {
		return err
	}
	switch {
	case d.key == nil && len(ids) > 0:
		return fmt.Errorf("%w (key id %s): set --blob-key-file", ErrKeyMissing, strings.Join(ids, ", "))
	case d.key == nil:
		return nil
	case len(ids) == 0:
		return d.SetKeyIDs([]string{d.key.id})
	case !slices.Contains(ids, d.key.id):
		return fmt.Errorf("%w: it has id %s, the store expects %s: check --blob-key-file", ErrWrongKey, d.key.id, strings.Join(ids, " or "))
	}
	return nil
}

// KeyIDs returns the ids of the keys that open every encrypted blob in the store.
func (d *Dir) KeyIDs() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(d.root, keyIDsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", d.root, err)
	}
	return strings.Fields(string(b)), nil
}

// SetKeyIDs records ids as the keys that open every encrypted blob (after a rekey
// pass), replacing the file atomically.
func (d *Dir) SetKeyIDs(ids []string) error {
	tmp, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "key-ids-*")
	if err != nil {
		return fmt.Errorf("blob store %s: %w", d.root, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(strings.Join(ids, "\n") + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.root, keyIDsFile))
	}
	if err == nil {
		err = syncDir(d.root)
	}
	if err != nil {
		return fmt.Errorf("blob store %s: key ids: %w", d.root, err)
	}
	return nil
}
