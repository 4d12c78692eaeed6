package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/casebookhq/casebook/casebook"
)

// BlobDir checks that attachments can be written under dir (it writes, fsyncs and
// removes one file in dir/tmp, where the blob store writes) and that the file system
// has at least minFree bytes free, warning below warnFree.
func BlobDir(dir string, minFree, warnFree uint64) Check {
	return Check{Name: "blobs", Run: func(ctx context.Context) (string, error) {
		tmp := filepath.Join(dir, "tmp")
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return "", fmt.Errorf("cannot create %s: give the service user a directory it owns (--data-dir): %w", tmp, err)
		}
		f, err := os.CreateTemp(tmp, "doctor-*")
		if err != nil {
			return "", fmt.Errorf("cannot write in %s: check its owner and permissions: %w", tmp, err)
		}
		defer os.Remove(f.Name())
		_, err = f.Write([]byte("casebook doctor\n"))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("cannot write in %s: %w", tmp, err)
		}
		free, err := freeBytes(dir)
		if err != nil {
			return "", Warning("%s is writable; free space unknown: %v", dir, err)
		}
		switch {
		case free < minFree:
			return "", fmt.Errorf("%s has %s free, less than the %s needed: free space or move --data-dir", dir, casebook.FormatSize(int64(free)), casebook.FormatSize(int64(minFree)))
		case free < warnFree:
			return "", Warning("%s has only %s free: attachments will soon be refused", dir, casebook.FormatSize(int64(free)))
		}
		return fmt.Sprintf("%s is writable, %s free", dir, casebook.FormatSize(int64(free))), nil
	}}
}
