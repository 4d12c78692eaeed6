package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/casebookhq/casebook/casebook"
)

// Copy copies the object name from one backend to another as it is stored
// (encrypted blobs stay encrypted under the same data key and name), unless the
// destination already has it: a copy interrupted part-way is simply run again. It
// reports whether it copied, and how many bytes.
func Copy(ctx context.Context, from, to Backend, name string) (bool, int64, error) {
	if _, err := to.Size(ctx, name); err == nil {
		return false, 0, nil
	} else if !errors.Is(err, casebook.ErrNotFound) {
		return false, 0, err
	}
	rc, err := from.Open(ctx, name, 0, -1)
	if err != nil {
		return false, 0, err
	}
	defer rc.Close()
	tmp, err := to.Spool()
	if err != nil {
		return false, 0, fmt.Errorf("blob copy %s: %w", name, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, &ctxReader{ctx: ctx, r: rc})
	if err != nil {
		return false, 0, fmt.Errorf("blob copy %s: %w", name, err)
	}
	if size, err := from.Size(ctx, name); err != nil || size != n {
		return false, 0, fmt.Errorf("blob copy %s: read %d bytes of %d (%v)", name, n, size, err)
	}
	if err := to.Place(ctx, tmp, name); err != nil {
		return false, 0, fmt.Errorf("blob copy %s: %w", name, err)
	}
	return true, n, nil
}

// CopyKeyIDs records on to the keys that open from's blobs, so that the copy opens
// with the same key. A destination that already holds blobs under other keys is
// refused (ErrWrongKey): two stores must not be mixed.
func CopyKeyIDs(ctx context.Context, from, to Backend) error {
	ids, err := keyIDs(ctx, from)
	if err != nil {
		return err
	}
	have, err := keyIDs(ctx, to)
	if err != nil {
		return err
	}
	switch {
	case len(have) > 0 && !slices.Equal(have, ids):
		return fmt.Errorf("%w: %s holds blobs under key ids %v, this store's are %v", ErrWrongKey, to, have, ids)
	case len(ids) == 0 || len(have) > 0:
		return nil
	}
	return to.WriteMeta(ctx, keyIDsFile, []byte(strings.Join(ids, "\n")+"\n"))
}
