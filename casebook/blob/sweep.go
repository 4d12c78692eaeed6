package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// trashDir holds blobs the sweep is removing, between its rename and its final
// check (RemoveUnused). Unlike tmp/ it is not cleared at start: another instance
// starting must not delete a blob the sweep is about to put back.
const trashDir = "gc"

var _ casebook.BlobSweeper = (*Dir)(nil)

// Walk calls fn for every blob in the store, in no particular order.
func (d *Dir) Walk(ctx context.Context, fn func(casebook.BlobInfo) error) error {
	fans, err := os.ReadDir(d.root)
	if err != nil {
		return fmt.Errorf("blob walk: %w", err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || len(fan.Name()) != 2 {
			continue
		}
		names, err := os.ReadDir(filepath.Join(d.root, fan.Name()))
		if err != nil {
			return fmt.Errorf("blob walk: %w", err)
		}
		for _, e := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !validKey(e.Name()) || e.Name()[:2] != fan.Name() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the directory was read
			}
			if err != nil {
				return fmt.Errorf("blob walk: %w", err)
			}
			if err := fn(casebook.BlobInfo{Key: e.Name(), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveUnused removes the blob named key if it was last written or named again (Put
// sets its time) before cutoff, and reports whether it did. The caller has checked
// that no row names it.
//
// The blob is first renamed into the trash, then its time is read again: a Put that
// found it after the caller's check has set its time to now, and the blob is put back
// before that Put's update can commit. A Put that comes after the rename finds no
// blob and writes its own copy. So a blob that an update names is never lost to a
// sweep, as long as the grace period is longer than any Put-to-commit interval.
func (d *Dir) RemoveUnused(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("blob %q: %w", key, casebook.ErrInvalidInput)
	}
	if err := os.MkdirAll(filepath.Join(d.root, trashDir), 0o700); err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	trash := filepath.Join(d.root, trashDir, key)
	if err := os.Rename(d.path(key), trash); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	return d.settle(key, cutoff)
}

// settle finishes a removal whose blob is in the trash: back in place when it was
// touched at or after cutoff (or a new copy is already there), gone otherwise.
func (d *Dir) settle(key string, cutoff time.Time) (bool, error) {
	trash := filepath.Join(d.root, trashDir, key)
	st, err := os.Stat(trash)
	if err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	if !st.ModTime().Before(cutoff) {
		// Link, not rename: a copy a Put wrote meanwhile must not be replaced.
		if err := os.Link(trash, d.path(key)); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("blob remove %s: put back: %w", key, err)
		}
		return false, os.Remove(trash)
	}
	if err := os.Remove(trash); err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	return true, nil
}

// Recover settles removals a crash interrupted: a blob left in the trash goes back
// when it was touched at or after cutoff, else it is removed. The sweep runs it first.
func (d *Dir) Recover(ctx context.Context, cutoff time.Time) error {
	es, err := os.ReadDir(filepath.Join(d.root, trashDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob trash: %w", err)
	}
	for _, e := range es {
		if !validKey(e.Name()) {
			continue
		}
		if _, err := d.settle(e.Name(), cutoff); err != nil {
			return err
		}
	}
	return nil
}
