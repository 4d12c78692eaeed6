// Package s3test runs a private S3 server for tests: Versity's gateway (versitygw)
// serving a bucket from a test's temporary directory on a random loopback port.
//
// Without versitygw installed (`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`,
// which .ci/test.sh does) a test that asks for one is skipped, or fails when CI=true:
// a check that cannot run must not pass silently in CI.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The root account of every server.
const (
	AccessKey = "casebooktest"
	SecretKey = "casebook-test-secret"
	Bucket    = "casebook"
)

// Server is a running versitygw.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

// Binary finds versitygw on PATH, in GOBIN or in GOPATH/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

// Start starts a server with an empty bucket named Bucket and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err.Error() + ": required in CI")
		}
		t.Skip(err.Error())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	s.Restart()
	t.Cleanup(s.Kill)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s
}

// Restart starts the server again on the same port and directory after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.addr, "--access", AccessKey, "--secret", SecretKey, "posix", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("versitygw did not listen on %s: %v", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// URL is a casebook blob URL for the bucket under prefix.
func (s *Server) URL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1&path_style=true", Bucket, prefix, s.Endpoint())
}

// Dir is the directory the server keeps its buckets in (Dir()/Bucket/KEY is an object).
func (s *Server) Dir() string { return s.dir }

// Client is an S3 client for the server, signed as the root account.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}
