package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/failpoint"
)

// Dir is the file backend: a directory, one file per object, fanned out over 256
// subdirectories.
//
// A file is written to a temporary name in tmp/, fsynced, and renamed to its name,
// then the directory is fsynced (in a round shared with the other Puts in flight,
// dirsync.go): a crash mid-write leaves only a temporary file, never a visible
// partial object, and Place returns only once the name is durable. Several instances may share the directory (NFS): a start
// removes only its own host's leftovers and files older than StaleTemp, never another
// instance's write in progress.
type Dir struct {
	root string
	// dirs fsyncs the directories renamed into, in rounds shared by concurrent Puts.
	dirs *dirSyncs
}

var _ Backend = (*Dir)(nil)

// NewDir prepares root for use, creating it when missing and clearing temporary files
// that no live write can be using.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", root, err)
	}
	if err := clearTemp(filepath.Join(root, "tmp"), StaleTemp, time.Now()); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", root, err)
	}
	return &Dir{root: root, dirs: &dirSyncs{fsync: syncDir}}, nil
}

// Root returns the directory.
func (d *Dir) Root() string { return d.root }

// String names the store as a file URL.
func (d *Dir) String() string { return "file://" + d.root }

// Spool creates a temporary file in the store's tmp/ directory, on the same file
// system as the objects, so that Place is a rename.
func (d *Dir) Spool() (*os.File, error) {
	return os.CreateTemp(filepath.Join(d.root, "tmp"), tempPrefix("put")+"*")
}

// Place fsyncs f and renames it to name, unless name exists. An existing object has
// its modification time set to now instead: the sweep removes only objects untouched
// for the grace period, so one an update is about to name again is safe from it even
// if no row names it yet.
func (d *Dir) Place(ctx context.Context, f *os.File, name string) error {
	final := d.path(name)
	now := time.Now()
	err := os.Chtimes(final, now, now)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	failpoint.Reached("blob.synced")
	if err := d.rename(f.Name(), final); err != nil {
		return err
	}
	failpoint.Reached("blob.renamed")
	if err := d.dirs.sync(filepath.Dir(final)); err != nil {
		return err
	}
	failpoint.Reached("blob.placed")
	return nil
}

// rename moves tmp to final. A fan-out directory that does not exist yet is made
// first, and its entry in the root made durable like the object's in it.
func (d *Dir) rename(tmp, final string) error {
	err := os.Rename(tmp, final)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(filepath.Dir(final), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := d.dirs.sync(d.root); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// Size returns the size of the object name.
func (d *Dir) Size(ctx context.Context, name string) (int64, error) {
	st, err := os.Stat(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", name, casebook.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", name, err)
	}
	return st.Size(), nil
}

// Open reads n bytes of the object from off, to its end when n < 0.
func (d *Dir) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", name, casebook.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", name, err)
	}
	if off == 0 && n < 0 {
		return f, nil
	}
	if n < 0 {
		n = 1<<63 - 1 - off
	}
	return readCloser{Reader: io.NewSectionReader(f, off, n), Closer: f}, nil
}

// Patch writes each patch in place with an fsync after it.
func (d *Dir) Patch(ctx context.Context, name string, patches []Patch) error {
	f, err := os.OpenFile(d.path(name), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", name, casebook.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", name, err)
	}
	defer f.Close()
	for _, p := range patches {
		if _, err := f.WriteAt(p.Data, p.Off); err != nil {
			return fmt.Errorf("blob %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("blob %s: fsync: %w", name, err)
		}
	}
	return f.Close()
}

// ReadMeta reads the file name at the root.
func (d *Dir) ReadMeta(ctx context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.root, name))
}

// WriteMeta replaces the file name at the root atomically (temporary file, fsync,
// rename, fsync of the directory).
func (d *Dir) WriteMeta(ctx context.Context, name string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Join(d.root, "tmp"), tempPrefix(name)+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.root, name))
	}
	if err == nil {
		err = syncDir(d.root)
	}
	return err
}

// path fans objects out over 256 directories so no directory grows huge.
func (d *Dir) path(key string) string {
	return filepath.Join(d.root, key[:2], key)
}

func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	return strings.Trim(key, "0123456789abcdef") == ""
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

type readCloser struct {
	io.Reader
	io.Closer
}
