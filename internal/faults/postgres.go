// Package faults gives tests the failures they inject: a throwaway
// PostgreSQL cluster that can be stopped and started again while services
// use it, and a TCP proxy that can refuse, hang or pass connections (an
// SMTP server or an identity provider going down). The fault tests of the
// suite are in this package's *_fault_test.go files.
package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/testenv"
)

// PostgresBin is where the PostgreSQL 15 server binaries are (Debian's
// postgresql-15 package); PG_BIN overrides it.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// Postgres is a PostgreSQL cluster of one test: its own data directory,
// port and socket directory, trust authentication, no fsync. It is removed
// when the test ends.
type Postgres struct {
	Port int
	dir  string // the cluster's data directory
	bin  string
	mu   sync.Mutex
	up   bool
	t    testing.TB
}

// StartPostgres creates and starts a cluster. initdb refuses to run as
// root: when the test runs as root, the cluster belongs to the postgres
// user and every command runs as it (runuser). Without the binaries the
// test is skipped loudly (failed under CI=true).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := os.Getenv("PG_BIN")
	if bin == "" {
		bin = PostgresBin
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		testenv.Missing(t, "PostgreSQL faults", fmt.Sprintf("server binaries not found in %s; apt-get install postgresql or set PG_BIN", bin))
	}
	root, err := os.MkdirTemp("", "faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Postgres{dir: filepath.Join(root, "data"), bin: bin, t: t}
	if err := os.Mkdir(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "PostgreSQL faults", fmt.Sprintf("running as root without a postgres user (%v); apt-get install postgresql creates it", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{root, p.dir} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if out, err := p.run("initdb", "-D", p.dir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\nshared_buffers = 16MB\n", p.Port, root)
	if err := os.WriteFile(filepath.Join(p.dir, "postgresql.auto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_, _ = p.run("chown", "postgres", filepath.Join(p.dir, "postgresql.auto.conf"))
	}
	p.Start()
	t.Cleanup(func() {
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if up {
			_, _ = p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop")
		}
	})
	return p
}

// run runs a PostgreSQL command (as postgres when the test runs as root).
func (p *Postgres) run(name string, args ...string) (string, error) {
	path := name
	if name != "chown" {
		path = filepath.Join(p.bin, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 && name != "chown" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// URL is a connection URL of the cluster's postgres database.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// Start starts the cluster and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
}

// Crash stops the cluster the way a power cut stops a server's processes:
// pg_ctl stop -m immediate ends them at once, with no checkpoint, and the
// next Start recovers from the write-ahead log. What a commit flushed to
// the log survives; what it did not is lost.
func (p *Postgres) Crash() {
	p.t.Helper()
	p.stop("immediate")
}

// Stop stops the cluster the way an operator restarting it would
// (pg_ctl stop -m fast: sessions are terminated, in-flight transactions
// rolled back).
func (p *Postgres) Stop() {
	p.t.Helper()
	p.stop("fast")
}

// stop runs pg_ctl stop in mode.
func (p *Postgres) stop(mode string) {
	p.t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.dir, "-m", mode, "-w", "-t", "60", "stop"); err != nil && !strings.Contains(out, "not running") {
		p.t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	p.mu.Lock()
	p.up = false
	p.mu.Unlock()
}
