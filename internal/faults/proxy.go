package faults

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Mode is what a Proxy does with connections.
type Mode int

// The modes of a Proxy.
const (
	// Up forwards connections to the target.
	Up Mode = iota
	// Down closes the listening socket: connections are refused, as by a
	// server that is not running. The port stays reserved for the proxy.
	Down
	// Hang accepts connections and never answers nor reads them, as a
	// server that is stuck.
	Hang
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a target address, whose
// mode a test switches to simulate the target going down, hanging and
// coming back, on the same port.
type Proxy struct {
	Addr   string // host:port clients connect to
	target string

	mu     sync.Mutex
	mode   Mode
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	// Accepted counts the connections accepted, in every mode.
	accepted int
}

// NewProxy starts a proxy to target in mode Up, closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}, ln: ln}
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

// Port is the proxy's port.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

// serve accepts the connections of ln until it is closed.
func (p *Proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted++
			p.conns[c] = struct{}{}
			mode := p.mode
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.forget(c)
				if mode == Hang {
					_, _ = io.Copy(io.Discard, c) // until the client gives up
					return
				}
				up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
				if err != nil {
					return
				}
				p.mu.Lock()
				p.conns[up] = struct{}{}
				p.mu.Unlock()
				defer p.forget(up)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

func (p *Proxy) forget(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Accepted returns the number of connections accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Set switches the proxy to mode m. Going Down closes the listener and
// every open connection; leaving Down listens again on the same port.
func (p *Proxy) Set(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == m {
		p.mode = m
		return nil
	}
	prev := p.mode
	p.mode = m
	switch {
	case m == Down:
		_ = p.ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
	case prev == Down:
		ln, err := net.Listen("tcp", p.Addr)
		if err != nil {
			return err
		}
		p.ln = ln
		p.serve(ln)
	}
	return nil
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}
