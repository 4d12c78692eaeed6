package dovecottest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server and can cut them, to test what a client
// does when the network fails under it (a cut in the middle of a literal, say).
type Proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	// cutAfter, when positive, cuts the next connection once the server has sent
	// that many bytes through it.
	cutAfter atomic.Int64
	cuts     atomic.Int64
}

// NewProxy listens on a loopback port and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dovecottest: proxy: %v", err)
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.CutAll()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// CutAll closes every open connection.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// CutAfter arms a one-shot cut: the next connection to carry n more bytes from the
// server after this call is closed at that point.
func (p *Proxy) CutAfter(n int64) { p.cutAfter.Store(n) }

// Cuts counts the connections cut by CutAfter.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		go func() {
			io.Copy(server, client)
			server.Close()
			client.Close()
		}()
		go func() {
			p.downstream(client, server)
			server.Close()
			client.Close()
			p.track(client, false)
			p.track(server, false)
		}()
	}
}

// downstream copies server to client, cutting both when an armed cut is reached.
func (p *Proxy) downstream(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if left := p.cutAfter.Load(); left > 0 {
				if int64(n) >= left {
					if p.cutAfter.CompareAndSwap(left, 0) {
						client.Write(chunk[:left])
						p.cuts.Add(1)
						return
					}
				} else {
					p.cutAfter.Add(-int64(n))
				}
			}
			if _, werr := client.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
