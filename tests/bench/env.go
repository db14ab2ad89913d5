package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Env owns everything a run creates — a temporary directory, PostgreSQL
// schemas and server processes — and removes it all in Close, which runs
// whatever happened (errors, Ctrl-C, timeout).
type Env struct {
	// Bin is the directory holding the kisee and pasee binaries.
	Bin string
	// Dir is the run's temporary directory.
	Dir string
	// PG is the PostgreSQL server URL, "" when PostgreSQL is unavailable.
	PG string
	// LogLevel is given to the servers ([log] level).
	LogLevel string

	// Dex is the Dex binary measured beside Pasee's refresh, "" for none.
	Dex string
	// PaseeEnv is added to the environment of every Pasee started
	// ("GOMAXPROCS=1").
	PaseeEnv []string

	mu        sync.Mutex
	procs     []*Proc
	schemas   []string
	databases []string
	seq       int
}

// schemaPrefix names the schemas of bench runs: bench_<unix time>_<random>.
const schemaPrefix = "bench_"

// NewEnv creates the run's temporary directory and checks PostgreSQL at
// pgURL, which must be on the loopback interface ("" to go without).
func NewEnv(ctx context.Context, bin, pgURL, logLevel string) (*Env, error) {
	for _, name := range []string{"kisee", "pasee"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("%s: %w (build the binaries first: make build)", name, err)
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kisee-pasee-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{Bin: abs, Dir: dir, LogLevel: logLevel}
	if pgURL != "" {
		if err := checkLoopback(pgURL); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := pingPostgres(ctx, pgURL); err != nil {
			fmt.Fprintf(os.Stderr, "WARNING: PostgreSQL unreachable at %s (%v): the PostgreSQL scenarios are SKIPPED\n", pgURL, err)
		} else {
			e.PG = pgURL
			e.sweepSchemas(ctx)
		}
	}
	return e, nil
}

// checkLoopback refuses a database URL off this machine: the benchmark
// only ever talks to loopback addresses.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("PostgreSQL URL: %w", err)
	}
	hosts := []string{u.Hostname()}
	if h := u.Query().Get("host"); h != "" { // libpq style: ?host=/run/postgresql or ?host=h1,h2
		hosts = append(hosts, strings.Split(h, ",")...)
	}
	for _, host := range hosts {
		if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			continue
		}
		return fmt.Errorf("PostgreSQL host %q is not a loopback address: the benchmark only runs against this machine", host)
	}
	return nil
}

// pingPostgres checks that pgURL accepts a connection.
func pingPostgres(ctx context.Context, pgURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// sweepSchemas drops the schemas and databases of bench runs older than six
// hours: runs that were killed (SIGKILL) before they could clean up.
func (e *Env) sweepSchemas(ctx context.Context) {
	conn, err := pgx.Connect(ctx, e.PG)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, k := range []struct{ list, drop string }{
		{`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\_%'`, "DROP SCHEMA IF EXISTS %s CASCADE"},
		{`SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'`, "DROP DATABASE IF EXISTS %s WITH (FORCE)"},
	} {
		rows, err := conn.Query(ctx, k.list)
		if err != nil {
			return
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return
		}
		for _, n := range names {
			parts := strings.Split(n, "_")
			if len(parts) < 3 {
				continue
			}
			ts, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil || time.Since(time.Unix(ts, 0)) < 6*time.Hour {
				continue
			}
			_, _ = conn.Exec(ctx, fmt.Sprintf(k.drop, pgx.Identifier{n}.Sanitize()))
		}
	}
}

// NewSchema creates a fresh PostgreSQL schema and returns a URL whose
// search_path is that schema. Close drops it.
func (e *Env) NewSchema(ctx context.Context) (string, error) {
	name, err := e.create(ctx, "SCHEMA", &e.schemas)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(e.PG)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// NewDatabase creates a fresh PostgreSQL database, for a server that
// cannot be given a schema (Dex), and returns its name. Close drops it.
func (e *Env) NewDatabase(ctx context.Context) (string, error) {
	return e.create(ctx, "DATABASE", &e.databases)
}

// create makes a PostgreSQL object of kind (SCHEMA, DATABASE) named
// bench_<unix time>_<random>, and records its name in list (under e.mu)
// for Close to drop.
func (e *Env) create(ctx context.Context, kind string, list *[]string) (string, error) {
	if e.PG == "" {
		return "", errors.New("PostgreSQL unavailable")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s%d_%s", schemaPrefix, time.Now().Unix(), hex.EncodeToString(b[:]))
	conn, err := pgx.Connect(ctx, e.PG)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE "+kind+" "+name); err != nil {
		return "", fmt.Errorf("create %s: %w", strings.ToLower(kind), err)
	}
	e.mu.Lock()
	*list = append(*list, name)
	e.mu.Unlock()
	return name, nil
}

// Backends lists the stores the scenarios run on.
func (e *Env) Backends() []string {
	if e.PG == "" {
		return []string{"sqlite"}
	}
	return []string{"sqlite", "postgres"}
}

// StoreURL returns a fresh store: a SQLite file in the run's directory, or
// a new PostgreSQL schema.
func (e *Env) StoreURL(ctx context.Context, backend, name string) (string, error) {
	if backend == "postgres" {
		return e.NewSchema(ctx)
	}
	return "sqlite:" + filepath.Join(e.newDir(name), name+".db"), nil
}

// newDir makes a fresh subdirectory of the run's directory.
func (e *Env) newDir(name string) string {
	e.mu.Lock()
	e.seq++
	n := e.seq
	e.mu.Unlock()
	d := filepath.Join(e.Dir, fmt.Sprintf("%02d-%s", n, name))
	_ = os.MkdirAll(d, 0o700)
	return d
}

// Close stops every process still running, drops the schemas and removes
// the temporary directory.
func (e *Env) Close() {
	e.mu.Lock()
	procs, schemas, databases := e.procs, e.schemas, e.databases
	e.procs, e.schemas, e.databases = nil, nil, nil
	e.mu.Unlock()
	for _, p := range procs {
		_ = p.Stop()
	}
	if len(schemas)+len(databases) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if conn, err := pgx.Connect(ctx, e.PG); err == nil {
			for _, s := range schemas {
				if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
					fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", s, err)
				}
			}
			for _, d := range databases {
				if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d+" WITH (FORCE)"); err != nil {
					fmt.Fprintf(os.Stderr, "drop database %s: %v\n", d, err)
				}
			}
			_ = conn.Close(ctx)
		} else {
			fmt.Fprintf(os.Stderr, "cannot drop schemas %v and databases %v: %v\n", schemas, databases, err)
		}
		cancel()
	}
	_ = os.RemoveAll(e.Dir)
}

// Proc is a running kisee or pasee.
type Proc struct {
	Name string
	// URL is its base URL, http://127.0.0.1:<port>.
	URL string
	// StartTime is the time from exec to the first 200 of GET /health.
	StartTime time.Duration
	// Dir is its working directory; Settings its settings file.
	Dir, Settings string

	// path, args and health are how it was started: the executable, its
	// arguments and the path whose 200 says it is ready.
	path, health string
	args, env    []string

	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	once sync.Once
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the process to exit, killing it after
// ten seconds.
func (p *Proc) Stop() error {
	var err error
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			err = p.err
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			err = fmt.Errorf("%s did not stop within 10 s of SIGTERM: killed", p.Name)
		}
	})
	return err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// LogTail returns the end of what the process wrote.
func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs the binary name of e.Bin (kisee or pasee) with a settings
// file in dir and waits until GET /health answers 200, measuring how long
// that took.
func (e *Env) start(ctx context.Context, name, dir, settingsFile string, port int) (*Proc, error) {
	return e.startProc(ctx, &Proc{
		Name: name, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, Settings: settingsFile,
		path: filepath.Join(e.Bin, name), args: []string{"--settings", settingsFile}, health: "/health",
		env: e.envOf(name),
	})
}

// envOf is what is added to the environment of the binary name.
func (e *Env) envOf(name string) []string {
	if name == "pasee" {
		return e.PaseeEnv
	}
	return nil
}

// startProc runs p.path with p.args in p.Dir and waits until GET p.health
// on p.URL answers 200, measuring how long that took.
func (e *Env) startProc(ctx context.Context, p *Proc) (*Proc, error) {
	p.log, p.done = filepath.Join(p.Dir, p.Name+".log"), make(chan struct{})
	name := p.Name
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(p.path, p.args...)
	p.cmd.Dir = p.Dir
	if len(p.env) > 0 {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Own process group (Ctrl-C reaches the bench, which stops the servers
	// in order) and killed with the bench if it dies.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	poll := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	deadline := t0.Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+p.health, nil)
		resp, err := poll.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.StartTime = time.Since(t0)
				return p, nil
			}
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited at start: %v\n%s", name, p.err, p.LogTail())
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not healthy after 30 s\n%s", name, p.LogTail())
		}
		time.Sleep(time.Millisecond)
	}
}

// Forget stops p and drops it from the processes Close stops.
func (e *Env) Forget(p *Proc) error {
	err := p.Stop()
	e.mu.Lock()
	for i, q := range e.procs {
		if q == p {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	return err
}

// Restart stops p and starts it again on the same settings and port.
func (e *Env) Restart(ctx context.Context, p *Proc) (*Proc, error) {
	if err := e.Forget(p); err != nil {
		return nil, err
	}
	return e.startProc(ctx, &Proc{Name: p.Name, URL: p.URL, Dir: p.Dir, Settings: p.Settings, path: p.path, args: p.args, env: p.env, health: p.health})
}

// genKeyPEM returns a fresh ES256 private key in PEM.
func genKeyPEM() (string, error) {
	k, err := token.GenerateKey(token.ES256)
	if err != nil {
		return "", err
	}
	b, err := k.MarshalPEM()
	return string(b), err
}

// StartKisee starts Kisee with the sql backend on storeURL.
func (e *Env) StartKisee(ctx context.Context, storeURL string) (*Proc, error) {
	key, err := genKeyPEM()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := e.newDir("kisee")
	s := kiseeSettings(port, storeURL, key, e.LogLevel)
	file := filepath.Join(dir, "kisee.toml")
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		return nil, err
	}
	return e.start(ctx, "kisee", dir, file, port)
}

// StartPasee starts Pasee on storeURL with the Kisee at kiseeURL as its
// provider "kisee".
func (e *Env) StartPasee(ctx context.Context, storeURL, kiseeURL string) (*Proc, error) {
	key, err := genKeyPEM()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := e.newDir("pasee")
	s := paseeSettings(port, storeURL, key, kiseeURL, e.LogLevel)
	file := filepath.Join(dir, "pasee.toml")
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		return nil, err
	}
	return e.start(ctx, "pasee", dir, file, port)
}

// StartPaseeLike starts another instance of the Pasee p, with its settings
// (the same store, signing key and issuer) on another port: instances
// behind one load balancer.
func (e *Env) StartPaseeLike(ctx context.Context, p *Proc) (*Proc, error) {
	settings, err := os.ReadFile(p.Settings)
	if err != nil {
		return nil, err
	}
	_, oldPort, err := net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s, err := withPort(string(settings), oldPort, port)
	if err != nil {
		return nil, err
	}
	dir := e.newDir("pasee")
	file := filepath.Join(dir, "pasee.toml")
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		return nil, err
	}
	return e.start(ctx, "pasee", dir, file, port)
}

// withPort returns settings (written by paseeSettings) listening on port
// instead of oldPort.
func withPort(settings, oldPort string, port int) (string, error) {
	line := "\nport = " + oldPort + "\n"
	if !strings.Contains(settings, line) {
		return "", fmt.Errorf("no %q in the settings", strings.TrimSpace(line))
	}
	return strings.Replace(settings, line, fmt.Sprintf("\nport = %d\n", port), 1), nil
}

// kiseeSettings is the settings file of a bench Kisee: the sql backend on
// storeURL, defaults elsewhere.
func kiseeSettings(port int, storeURL, keyPEM, logLevel string) string {
	return fmt.Sprintf(`[server]
host = "127.0.0.1"
port = %d

[identity_backend]
class = "sql"
[identity_backend.options]
url = %q

[jwt]
private_key = '''%s'''

[log]
level = %q
`, port, storeURL, keyPEM, logLevel)
}

// paseeSettings is the settings file of a bench Pasee: its store on
// storeURL, the Kisee at kiseeURL as provider "kisee" and the bench's
// OpenID client, defaults elsewhere.
func paseeSettings(port int, storeURL, keyPEM, kiseeURL, logLevel string) string {
	return fmt.Sprintf(`host = "127.0.0.1"
port = %d
# The public URL, and so the issuer, stays the first instance's in the
# scale-out copies (StartPaseeLike), as behind one load balancer.
hostname = "http://127.0.0.1:%d"

[jwt]
private_key = '''%s'''

[storage]
url = %q

[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = %q

[log]
level = %q
`, port, port, keyPEM, storeURL, kiseeURL+"/", logLevel) + benchClients()
}
