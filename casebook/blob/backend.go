package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// Backend is where a Store keeps its objects: bytes under a name, nothing more. The
// Store above it encrypts, names, hashes and sniffs, so that every backend stores the
// same objects and a store moves between backends by copying them (Copy).
type Backend interface {
	// Spool creates a temporary file that a Put writes the object into before Place.
	Spool() (*os.File, error)
	// Place stores the spooled file f as the object name. When name exists it is left
	// as it is and only marked as stored again now, which the sweep's grace period
	// runs from: objects are written once, by content.
	Place(ctx context.Context, f *os.File, name string) error
	// Size returns the object's size, or casebook.ErrNotFound.
	Size(ctx context.Context, name string) (int64, error)
	// Open reads the object from off, n bytes (to its end when n < 0).
	Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error)
	// Patch overwrites bytes of an object, each patch durable before the next, so a
	// crash leaves the object as it was before or after one patch, never torn across two.
	Patch(ctx context.Context, name string, patches []Patch) error
	// ReadMeta reads a small file of the store's own (the key ids); fs.ErrNotExist
	// when there is none.
	ReadMeta(ctx context.Context, name string) ([]byte, error)
	// WriteMeta replaces a small file of the store's own atomically.
	WriteMeta(ctx context.Context, name string, b []byte) error
	// Walk, RemoveUnused and Recover are the sweep (see casebook.SweepBlobs).
	casebook.BlobSweeper
	// String names the backend in messages, without secrets.
	String() string
}

// Patch is bytes to write over an object at an offset.
type Patch struct {
	Off  int64
	Data []byte
}

// StaleTemp is how old a temporary file of another process must be before a start
// removes it: far longer than any Put takes, since several instances may share the
// directory and one must never remove another's write in progress.
const StaleTemp = time.Hour

// tempPrefix starts the name of a temporary file made by this process: the host and
// the process id, so that a start can tell its own leftovers from another
// instance's live writes.
func tempPrefix(kind string) string {
	return fmt.Sprintf("%s.%s.%d.%s.", kind, hostName(), os.Getpid(), processNonce)
}

// processNonce tells this process from an earlier one that had the same id.
var processNonce = hex.EncodeToString(randomBytes(4))

func hostName() string {
	host, _ := os.Hostname()
	return strings.NewReplacer(".", "_", "/", "_").Replace(host)
}

// clearTemp removes the temporary files in dir that no live write can be using: those
// this host's earlier processes left (their process is gone, or has this process's
// id, as in a container restarted with the same pid), and any older than stale.
func clearTemp(dir string, stale time.Duration, now time.Time) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	host := hostName()
	for _, e := range es {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if leftByThisHost(e.Name(), host) || now.Sub(info.ModTime()) > stale {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// leftByThisHost reports whether a temporary file was made on this host by a process
// that is no longer writing it.
func leftByThisHost(name, host string) bool {
	parts := strings.Split(name, ".")
	if len(parts) < 5 || parts[1] != host {
		return false
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil {
		return false
	}
	if pid == os.Getpid() {
		// Ours, or a previous process's that had our id (a restarted container).
		return parts[3] != processNonce
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
