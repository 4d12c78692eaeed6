package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/doctor"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// blobURL is the blob store's URL: --blob-url, or the directory under --data-dir.
func (a *app) blobURL() string {
	if a.cfg.BlobURL != "" {
		return a.cfg.BlobURL
	}
	dir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		dir = a.cfg.DataDir
	}
	return "file://" + dir
}

// blobStore opens the blob store with the key, refusing a key its blobs are not under.
func (a *app) blobStore(ctx context.Context) (*blob.Store, error) {
	if a.blobs != nil {
		return a.blobs, nil
	}
	key, err := a.blobKey()
	if err != nil {
		return nil, err
	}
	s, err := a.openBlobs(ctx, a.blobURL(), key)
	if err != nil {
		return nil, err
	}
	a.blobs = s
	return s, nil
}

// storeAndBlobs opens the database and the blob store, as the commands that work on
// both need them.
func (a *app) storeAndBlobs(ctx context.Context) (*postgres.Store, *blob.Store, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	bl, err := a.blobStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	return st, bl, nil
}

// openBlobs opens the store at url with keys (the first encrypts).
func (a *app) openBlobs(ctx context.Context, url string, keys ...*blob.Key) (*blob.Store, error) {
	b, err := a.blobBackend(ctx, url)
	if err != nil {
		return nil, err
	}
	return blob.New(ctx, b, keys...)
}

// blobBackend opens the backend at url, with credentials from the AWS_*_FILE
// variables when they are set.
func (a *app) blobBackend(ctx context.Context, url string) (blob.Backend, error) {
	creds, err := awsFileCredentials(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenURL(ctx, url, creds)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return b, nil
}

// awsCredentialVars are the standard AWS variables a file may stand in for.
var awsCredentialVars = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// awsFileCredentials reads AWS_ACCESS_KEY_ID_FILE, AWS_SECRET_ACCESS_KEY_FILE and
// AWS_SESSION_TOKEN_FILE, like every secret here may come from a file. When none is
// set the zero value leaves the standard AWS chain (variables, profiles, instance
// roles) to the SDK; a variable set directly wins over its file.
func awsFileCredentials(lookup func(string) (string, bool)) (blob.Credentials, error) {
	vals := make([]string, len(awsCredentialVars))
	fromFile := false
	for i, name := range awsCredentialVars {
		if v, ok := lookup(name); ok {
			vals[i] = v
			continue
		}
		path, ok := lookup(name + "_FILE")
		if !ok {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return blob.Credentials{}, fmt.Errorf("%s_FILE: %w", name, err)
		}
		vals[i], fromFile = strings.TrimRight(string(b), "\r\n"), true
	}
	if !fromFile {
		return blob.Credentials{}, nil
	}
	if vals[0] == "" || vals[1] == "" {
		return blob.Credentials{}, errors.New("AWS credentials from files need both an access key id and a secret access key (AWS_ACCESS_KEY_ID[_FILE], AWS_SECRET_ACCESS_KEY[_FILE])")
	}
	return blob.Credentials{AccessKeyID: vals[0], SecretAccessKey: vals[1], SessionToken: vals[2]}, nil
}

// blobStoreCheck is the doctor's check of the blob store and --blob-key-file: the
// store opens (an S3 bucket answers to the credentials), the key is readable, and it
// is the key the store's blobs are under.
func (a *app) blobStoreCheck() doctor.Check {
	return doctor.Check{Name: "storage", Run: func(ctx context.Context) (string, error) {
		key, err := a.blobKey()
		if err != nil {
			return "", err
		}
		bl, err := a.openBlobs(ctx, a.blobURL(), key)
		if errors.Is(err, blob.ErrKeyMissing) || errors.Is(err, blob.ErrWrongKey) || errors.Is(err, blob.ErrS3Access) {
			return "", err
		}
		if err != nil {
			return "", fmt.Errorf("cannot open the blob store: %w", err)
		}
		if key == nil {
			return "", doctor.Warning("%s opens, but no --blob-key-file: attachments are stored unencrypted (make a key: head -c 32 /dev/urandom | base64)", bl)
		}
		ids, _ := bl.KeyIDs(ctx)
		return fmt.Sprintf("%s opens with key %s (keys in use: %v)", bl, key.ID(), ids), nil
	}}
}
