// Package e2e runs the built kisee and pasee binaries as a user would: real
// processes, real settings files, real listeners. The tests are in
// e2e_test.go; this file has the process helpers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the commands into dir and returns their paths by name.
func Build(dir string, names ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		bin := filepath.Join(dir, n)
		cmd := exec.Command("go", "build", "-o", bin, "github.com/kisee-pasee/suite/cmd/"+n)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", n, err, b)
		}
		out[n] = bin
	}
	return out, nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a running server binary.
type Process struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

// Logs returns what the process wrote so far.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Start runs bin with args in dir and waits until url answers /health.
func Start(t testing.TB, name, bin, dir, url string, env []string, args ...string) *Process {
	t.Helper()
	return start(t, name, bin, dir, url, func(status int) bool { return status == 200 }, env, args...)
}

// StartServing is Start for a server that may start unhealthy: it waits
// until url answers /health, whatever the status.
func StartServing(t testing.TB, name, bin, dir, url string, env []string, args ...string) *Process {
	t.Helper()
	return start(t, name, bin, dir, url, func(int) bool { return true }, env, args...)
}

func start(t testing.TB, name, bin, dir, url string, ready func(status int) bool, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.logs.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.Logs())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if ready(resp.StatusCode) {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited at start: %v\n%s", name, err, p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 15 s\n%s", name, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM\n%s", p.Name, err, p.Logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30 s of SIGTERM", p.Name)
	}
}

// Run runs a command to completion and returns its combined output.
func Run(ctx context.Context, dir, bin string, stdin string, args ...string) (string, error) {
	return RunEnv(ctx, dir, bin, nil, stdin, args...)
}

// RunEnv is Run with env added to the environment.
func RunEnv(ctx context.Context, dir, bin string, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
