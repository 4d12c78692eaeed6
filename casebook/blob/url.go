package blob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// ErrBlobURL marks a blob store URL of an unknown kind.
var ErrBlobURL = errors.New("want file:///PATH or s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true")

// Credentials replace the standard AWS chain for an s3:// URL when AccessKeyID is set.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// OpenURL opens the backend a blob store URL names: file:///PATH (a directory) or
// s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true.
func OpenURL(ctx context.Context, raw string, creds Credentials) (Backend, error) {
	switch {
	case strings.HasPrefix(raw, "file://"):
		p, err := FilePath(raw)
		if err != nil {
			return nil, err
		}
		return NewDir(p)
	case strings.HasPrefix(raw, "s3://"):
		c, err := ParseS3URL(raw)
		if err != nil {
			return nil, err
		}
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
		return NewS3(ctx, c)
	}
	return nil, fmt.Errorf("blob store %q: %w", raw, ErrBlobURL)
}

// FilePath is the directory of a file:///PATH URL.
func FilePath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
		return "", fmt.Errorf("blob store %q: %w", raw, ErrBlobURL)
	}
	return filepath.Clean(u.Path), nil
}

// CheckURL reports whether raw is a blob store URL OpenURL can open, without opening it.
func CheckURL(raw string) error {
	switch {
	case strings.HasPrefix(raw, "file://"):
		_, err := FilePath(raw)
		return err
	case strings.HasPrefix(raw, "s3://"):
		_, err := ParseS3URL(raw)
		return err
	}
	return fmt.Errorf("blob store %q: %w", raw, ErrBlobURL)
}
