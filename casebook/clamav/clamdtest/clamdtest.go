// Package clamdtest runs a private clamd for tests: Debian's clamav-daemon on a
// random loopback port, with a generated configuration and a signature database that
// holds only the EICAR test file (signature downloads are out of reach in tests).
//
// clamd takes seconds to start, so one daemon serves the whole test binary: the
// first Start launches it, later calls reuse it. It dies with the test binary.
//
// Without clamd installed a test that asks for one is skipped, or fails when CI=true:
// a check that cannot run must not pass silently in CI.
package clamdtest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/syncbuf"
)

// Binary is where Debian's clamav-daemon installs the daemon.
const Binary = "/usr/sbin/clamd"

// EICAR is the industry's harmless test file, which every scanner reports.
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// Signature is what clamd names EICAR with the database written here: custom
// signatures get the ".UNOFFICIAL" suffix.
const Signature = "Test-EICAR.UNOFFICIAL"

// signatures is the whole database: EICAR's MD5, size and name, one .hdb line.
const signatures = "44d88612fea8a8f36de82e1278abb02f:68:Test-EICAR\n"

// StreamMaxLength is the largest stream the daemon accepts, above casebook's 25 MiB
// default file cap so that benchmarks can scan a file of that size.
const StreamMaxLength = 64 << 20

// Server is the running clamd.
type Server struct {
	// Addr is the daemon's address as casebook takes it: tcp://127.0.0.1:PORT.
	Addr string
	// Port is its TCP port on 127.0.0.1.
	Port int
	log  *syncbuf.Buffer
}

var (
	once     sync.Once
	shared   *Server
	startErr error
)

// Start returns the test binary's clamd, starting it on first use.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		msg := "clamd is not installed (apt-get install clamav-daemon)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + ": required in CI")
		}
		t.Skip(msg)
	}
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		t.Fatalf("clamdtest: %v", startErr)
	}
	return shared
}

// Log returns what clamd logged so far, for a failing test to show.
func (s *Server) Log() string { return s.log.String() }

func start() (*Server, error) {
	dir, err := os.MkdirTemp("", "clamdtest-")
	if err != nil {
		return nil, err
	}
	// clamd reads its configuration and database at start (SelfCheck 0: never again),
	// so the directory can go as soon as it listens.
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(db, "test.hdb"), []byte(signatures), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: fmt.Sprintf("tcp://127.0.0.1:%d", port), Port: port, log: &syncbuf.Buffer{}}
	// Without LogFile a foreground clamd logs to its standard output.
	conf := fmt.Sprintf(`DatabaseDirectory %s
TCPSocket %d
TCPAddr 127.0.0.1
Foreground yes
SelfCheck 0
StreamMaxLength %d
MaxFileSize %d
MaxScanSize %d
`, db, port, StreamMaxLength, StreamMaxLength, 4*StreamMaxLength)
	if os.Getuid() == 0 {
		// Otherwise clamd drops to the clamav user, which cannot read the test's files.
		conf += "User root\n"
	}
	confPath := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child ends, not the process:
		// this goroutine keeps its thread for the life of the test binary, so the
		// daemon is killed exactly when the binary exits, however it exits.
		runtime.LockOSThread()
		cmd := exec.Command(Binary, "-c", confPath)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		fmt.Fprintf(os.Stderr, "clamdtest: clamd exited: %v\n%s", err, s.log)
		select {} // keep the thread: see above
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("clamd did not listen within 60 s:\n%s", s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CutProxy returns the address of a proxy to the daemon that aborts each connection
// (a TCP reset, as a crashed daemon leaves) once after bytes have reached the
// daemon: clamd dropping the connection mid-stream.
func (s *Server) CutProxy(t testing.TB, after int64) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	target := fmt.Sprintf("127.0.0.1:%d", s.Port)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go io.Copy(in, out)
				io.CopyN(out, in, after)
				in.(*net.TCPConn).SetLinger(0)
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// Unreachable returns a clamd address (tcp://HOST:PORT) where nothing listens: a
// loopback port taken and let go again.
func Unreachable(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}
