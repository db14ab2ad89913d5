// Package deploy_test checks what deploy/ ships, without Docker, systemd
// or nginx running: the compose file as the compose-spec library loads it
// (services, ports, health checks, dependencies, volumes, secrets), the
// settings files it mounts with the services' real loaders, the
// Dockerfile, the systemd units and the nginx site, and that they agree
// with one another and with configs/.
//
// It lives in the tests module so that compose-go stays out of the
// product's go.mod; it runs from deploy/ as if it were still there.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/pelletier/go-toml/v2"

	"github.com/kisee-pasee/suite/internal/deploytest"
	"github.com/kisee-pasee/suite/internal/testenv"
)

// TestMain runs the tests from the repository's deploy/ folder: every path
// below is relative to it.
func TestMain(m *testing.M) {
	if err := os.Chdir(filepath.Join("..", "..", "deploy")); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// loadCompose loads docker-compose.yml as `docker compose` would, with an
// empty environment (so only the file's own defaults apply).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(nil), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// longRunning are the services `docker compose up` keeps running.
func longRunning() []string { return []string{"postgres", "mailpit", "kisee", "pasee"} }

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"init", "kisee", "mailpit", "pasee", "postgres"}; !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	for _, name := range longRunning() {
		s := service(t, p, name)
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no health check", name)
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
		}
	}
	if s := service(t, p, "postgres"); !strings.HasPrefix(s.Image, "postgres:15") {
		t.Errorf("postgres image %q, want PostgreSQL 15", s.Image)
	}
	if s := service(t, p, "init"); s.Restart != "no" {
		t.Errorf("init: restart %q, want no (a one-off)", s.Restart)
	}
	// The health checks probe the port each service listens on.
	for name, port := range map[string]string{"kisee": "8140", "pasee": "8150"} {
		test := strings.Join(service(t, p, name).HealthCheck.Test, " ")
		if !strings.Contains(test, "http://127.0.0.1:"+port+"/health") {
			t.Errorf("%s health check %q does not probe :%s/health", name, test, port)
		}
	}
}

func TestComposePorts(t *testing.T) {
	p := loadCompose(t)
	for name, want := range map[string]uint32{"kisee": 8140, "pasee": 8150, "mailpit": 8025} {
		ports := service(t, p, name).Ports
		if len(ports) != 1 || ports[0].Target != want || ports[0].Published != strconv.Itoa(int(want)) {
			t.Errorf("%s ports %+v, want %d published", name, ports, want)
			continue
		}
		if ports[0].HostIP != "127.0.0.1" {
			t.Errorf("%s published on %q, want 127.0.0.1 only", name, ports[0].HostIP)
		}
	}
	for _, name := range []string{"postgres", "init"} {
		if ports := service(t, p, name).Ports; len(ports) > 0 {
			t.Errorf("%s publishes %+v; it should be reachable from the stack only", name, ports)
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	p := loadCompose(t)
	want := map[string]map[string]string{
		"postgres": {"init": types.ServiceConditionCompletedSuccessfully},
		"kisee": {"init": types.ServiceConditionCompletedSuccessfully, "postgres": types.ServiceConditionHealthy,
			"mailpit": types.ServiceConditionHealthy},
		"pasee": {"init": types.ServiceConditionCompletedSuccessfully, "postgres": types.ServiceConditionHealthy,
			"kisee": types.ServiceConditionHealthy},
	}
	for name, deps := range want {
		got := service(t, p, name).DependsOn
		if len(got) != len(deps) {
			t.Errorf("%s depends on %v, want %v", name, got, deps)
		}
		for dep, cond := range deps {
			if got[dep].Condition != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, got[dep].Condition, cond)
			}
		}
	}
}

func TestComposeVolumes(t *testing.T) {
	p := loadCompose(t)
	declared := map[string]bool{}
	for name := range p.Volumes {
		declared[name] = false
	}
	for _, want := range []string{"pgdata", "kisee-secrets", "pasee-secrets", "postgres-secrets"} {
		if _, ok := declared[want]; !ok {
			t.Errorf("named volume %q is not declared", want)
		}
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := declared[v.Source]; !ok {
					t.Errorf("%s mounts undeclared volume %q", name, v.Source)
				}
				declared[v.Source] = true
				// Secrets are written by init only.
				if strings.HasSuffix(v.Source, "-secrets") && name != "init" && !v.ReadOnly {
					t.Errorf("%s mounts %s writable", name, v.Source)
				}
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which is missing: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s mounts %s writable", name, v.Source)
				}
			}
		}
	}
	for name, used := range declared {
		if !used {
			t.Errorf("volume %q is declared but no service mounts it", name)
		}
	}
	if s := service(t, p, "postgres"); !mounts(s, "pgdata", "/var/lib/postgresql/data") {
		t.Error("PostgreSQL's data is not on the pgdata volume")
	}
}

func mounts(s types.ServiceConfig, source, target string) bool {
	for _, v := range s.Volumes {
		if v.Source == source && v.Target == target {
			return true
		}
	}
	return false
}

// The one image runs unprivileged, and holds no secret: none in the
// compose file, none in environment values, none in the mounted settings.
func TestComposeNoSecrets(t *testing.T) {
	p := loadCompose(t)
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"-----BEGIN", "PRIVATE KEY", "POSTGRES_PASSWORD:", "password="} {
		if strings.Contains(string(raw), bad) {
			t.Errorf("docker-compose.yml contains %q", bad)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	secretName := regexp.MustCompile(`(?i)(password|secret|token|private|key)`)
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil && *v != "" && secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") {
				t.Errorf("%s: environment %s carries a secret value; give a *_FILE path instead", name, k)
			}
		}
		if s.Build != nil && (s.Build.Context != root || s.Build.Dockerfile != "deploy/Dockerfile") {
			t.Errorf("%s builds %s with %s, want the repository root with deploy/Dockerfile", name, s.Build.Context, s.Build.Dockerfile)
		}
	}
	for _, name := range []string{"init", "kisee", "pasee"} {
		s := service(t, p, name)
		if s.Image != service(t, p, "kisee").Image || s.Build == nil {
			t.Errorf("%s does not build and run the suite's image", name)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: read_only %v, cap_drop %v; want a read-only root and no capability", name, s.ReadOnly, s.CapDrop)
		}
		if name != "init" && s.User != "" {
			t.Errorf("%s runs as %q instead of the image's non-root user", name, s.User)
		}
	}
}

// mount is a bind mount of the compose file: its source on the host.
func bindSource(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("%s mounts nothing at %s", s.Name, target)
	return ""
}

// volumeAt returns the named volume mounted on the directory holding path.
func volumeAt(s types.ServiceConfig, path string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && filepath.Dir(path) == v.Target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// environment returns the service's environment as a map.
func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

func readTOML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// get reads a dotted key of a TOML document ("jwt.private_key_file",
// "identity_providers.0.endpoint").
func get(doc any, key string) string {
	for _, part := range strings.Split(key, ".") {
		switch d := doc.(type) {
		case map[string]any:
			doc = d[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(d) {
				return ""
			}
			doc = d[i]
		default:
			return ""
		}
	}
	s, _ := doc.(string)
	return s
}

// The settings files the compose file mounts load with the real loaders,
// in the services' environment, and agree with the compose file: keys in
// the volumes init fills, URLs naming services of the stack.
func TestComposeSettings(t *testing.T) {
	p := loadCompose(t)
	initScript, err := os.ReadFile(bindSource(t, service(t, p, "init"), "/deploy/init-secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		service, settings, flag string
		port                    int
	}{
		{"kisee", "/etc/kisee/settings.toml", "--settings", 8140},
		{"pasee", "/etc/pasee/settings.toml", "--settings-file", 8150},
	} {
		t.Run(c.service, func(t *testing.T) {
			s := service(t, p, c.service)
			src := bindSource(t, s, c.settings)
			if ep := strings.Join(s.Entrypoint, " "); ep != c.service+" "+c.flag+" "+c.settings {
				t.Errorf("entrypoint %q does not serve the mounted settings %s", ep, c.settings)
			}
			env := environment(s)
			deploytest.Check(t, src, env)

			doc := readTOML(t, src)
			text, _ := os.ReadFile(src)
			if strings.Contains(string(text), "-----BEGIN") || strings.Contains(string(text), "password =") {
				t.Errorf("%s holds a secret", src)
			}
			// The signing key and the database password file are in the
			// service's secrets volume, which init fills.
			keyFile := get(doc, "jwt.private_key_file")
			for what, path := range map[string]string{"jwt.private_key_file": keyFile, "PGPASSFILE": env["PGPASSFILE"]} {
				v, ok := volumeAt(s, path)
				if !ok || v.Source != c.service+"-secrets" || !v.ReadOnly {
					t.Errorf("%s %q is not in the read-only %s-secrets volume", what, path, c.service)
				}
				initMount, ok := func() (types.ServiceVolumeConfig, bool) {
					for _, iv := range service(t, p, "init").Volumes {
						if iv.Source == v.Source {
							return iv, true
						}
					}
					return types.ServiceVolumeConfig{}, false
				}()
				if !ok {
					t.Errorf("init does not fill volume %s", v.Source)
					continue
				}
				written := filepath.Join(initMount.Target, filepath.Base(path))
				if what == "jwt.private_key_file" && !strings.Contains(string(initScript), "key "+written+" "+c.service) {
					t.Errorf("init-secrets.sh does not create %s with `%s keygen`", written, c.service)
				}
				if what == "PGPASSFILE" && (!strings.Contains(string(initScript), "pgpass "+c.service) || initMount.Target != "/secrets/"+c.service) {
					t.Errorf("init-secrets.sh does not write %s", written)
				}
			}
			// Listening inside the container on the port published and probed.
			host, port := get(doc, "server.host")+get(doc, "host"), doc["port"]
			if server, ok := doc["server"].(map[string]any); ok {
				port = server["port"]
			}
			if host != "0.0.0.0" || port != int64(c.port) {
				t.Errorf("listens on %s:%v, want 0.0.0.0:%d", host, port, c.port)
			}
		})
	}

	// URLs between services use the stack's service names and ports.
	kisee := readTOML(t, bindSource(t, service(t, p, "kisee"), "/etc/kisee/settings.toml"))
	pasee := readTOML(t, bindSource(t, service(t, p, "pasee"), "/etc/pasee/settings.toml"))
	for what, raw := range map[string]string{
		"kisee identity_backend.options.url": get(kisee, "identity_backend.options.url"),
		"pasee storage.url":                  get(pasee, "storage.url"),
		"pasee provider endpoint":            get(pasee, "identity_providers.0.endpoint"),
		"pasee provider jwks_url":            get(pasee, "identity_providers.0.settings.jwks_url"),
	} {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			t.Errorf("%s %q is not a URL", what, raw)
			continue
		}
		if _, ok := p.Services[u.Hostname()]; !ok {
			t.Errorf("%s %q names %q, not a service of the stack", what, raw, u.Hostname())
		}
	}
	if h := get(kisee, "email.host"); h != "mailpit" {
		t.Errorf("Kisee sends email to %q, not the mail catcher", h)
	}
	// The databases the services use are the ones postgres-init.sh creates.
	pgInit, err := os.ReadFile(bindSource(t, service(t, p, "postgres"), "/docker-entrypoint-initdb.d/10-kisee-pasee.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pgInit), "for service in kisee pasee") {
		t.Error("postgres-init.sh does not create the kisee and pasee roles and databases")
	}
	for _, svc := range []string{"kisee", "pasee"} {
		if !strings.Contains(string(initScript), "password "+svc) {
			t.Errorf("init-secrets.sh does not generate %s's database password", svc)
		}
	}
}

// init-secrets.sh never replaces a secret, and every key is generated by
// the binaries, not by the image build.
func TestInitScript(t *testing.T) {
	script, err := os.ReadFile("compose/init-secrets.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`[ -s "$1" ] && return 0`, `[ -s "$f" ] && return 0`, `"$2" keygen`, "umask 077", "key /secrets/kisee/key.pem kisee", "key /secrets/pasee/key.pem pasee"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("init-secrets.sh lacks %q", want)
		}
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		for _, f := range []string{"compose/init-secrets.sh", "compose/postgres-init.sh"} {
			if out, err := exec.Command(sh, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", f, err, out)
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, exposed []string
	args := map[string]string{}
	text := string(data)
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(text, "\\\n", " ")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "EXPOSE":
			exposed = append(exposed, f[1:]...)
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				args[k] = v
			}
		case "COPY", "ADD":
			if strings.Contains(sc.Text(), ".pem") || strings.Contains(sc.Text(), ".toml") {
				t.Errorf("the image gets a key or settings file: %s", sc.Text())
			}
		}
	}
	if len(froms) != 2 || froms[0] != "golang:${GO_VERSION}" || args["GO_VERSION"] != "1.26" {
		t.Errorf("stages %v (GO_VERSION %q), want a golang:1.26 builder and a final image", froms, args["GO_VERSION"])
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/kisee", "./cmd/pasee",
		"ca-certificates", "COPY --from=build /out/kisee /out/pasee", "HEALTHCHECK"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if len(users) != 1 || strings.HasPrefix(users[0], "0") || strings.HasPrefix(users[0], "root") {
		t.Errorf("final user %v, want one non-root user", users)
	}
	if !slices.Equal(exposed, []string{"8140", "8150"}) {
		t.Errorf("EXPOSE %v, want 8140 8150", exposed)
	}
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**/*.pem", ".run", "**/*.db"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf("Dockerfile.dockerignore does not keep %s out of the build context", want)
		}
	}
}

// unit is a systemd unit file: section → key → values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnits(t *testing.T) {
	for _, svc := range []string{"kisee", "pasee"} {
		t.Run(svc, func(t *testing.T) {
			path := filepath.Join("systemd", svc+".service")
			u := parseUnit(t, path)
			want := map[string]string{
				"DynamicUser": "yes", "User": svc, "StateDirectory": svc, "ProtectSystem": "strict", "ProtectHome": "yes",
				"NoNewPrivileges": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
				"AmbientCapabilities": "", "Restart": "on-failure", "KillSignal": "SIGTERM", "RestrictNamespaces": "yes",
				"SystemCallArchitectures": "native", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
			}
			for k, v := range want {
				if got, ok := u["Service"][k]; !ok || got[len(got)-1] != v {
					t.Errorf("%s=%v, want %q", k, got, v)
				}
			}
			if families := strings.Fields(u.last("Service", "RestrictAddressFamilies")); !slices.Equal(families, []string{"AF_UNIX", "AF_INET", "AF_INET6"}) {
				t.Errorf("RestrictAddressFamilies=%v", families)
			}
			if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
				t.Errorf("SystemCallFilter=%v, want @system-service", u["Service"]["SystemCallFilter"])
			}
			stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec"))
			if err != nil || stop <= 20*time.Second {
				t.Errorf("TimeoutStopSec=%s: must exceed the 20 s drain", u.last("Service", "TimeoutStopSec"))
			}
			exec := strings.Fields(u.last("Service", "ExecStart"))
			settings := "/etc/" + svc + "/settings.toml"
			if len(exec) != 3 || exec[0] != "/usr/local/bin/"+svc || !strings.HasPrefix(exec[1], "--settings") || exec[2] != settings {
				t.Errorf("ExecStart=%v, want /usr/local/bin/%s --settings… %s", exec, svc, settings)
			}
			if u.last("Install", "WantedBy") != "multi-user.target" {
				t.Error("not WantedBy=multi-user.target")
			}

			// The settings to install there (configs/<svc>-postgres.toml)
			// load, and read their secrets from the unit's credentials.
			config := filepath.Join("..", "configs", svc+"-postgres.toml")
			deploytest.Check(t, config, nil)
			credentials := map[string]bool{}
			for _, c := range u["Service"]["LoadCredential"] {
				name, _, _ := strings.Cut(c, ":")
				credentials[name] = true
			}
			dir := "/run/credentials/" + svc + ".service/"
			text, _ := os.ReadFile(config)
			for _, m := range regexp.MustCompile(`(?m)^\s*\w+_file\s*=\s*"([^"]+)"`).FindAllStringSubmatch(string(text), -1) {
				if !strings.HasPrefix(m[1], dir) {
					t.Errorf("%s reads %s, not a credential of the unit (%s...)", config, m[1], dir)
				} else if !credentials[strings.TrimPrefix(m[1], dir)] {
					t.Errorf("%s reads %s, but the unit has no LoadCredential=%s:...", config, m[1], strings.TrimPrefix(m[1], dir))
				}
			}
			doc := readTOML(t, config)
			proxies, _ := doc["trusted_proxies"].([]any)
			if server, ok := doc["server"].(map[string]any); ok {
				proxies, _ = server["trusted_proxies"].([]any)
			}
			if !slices.Contains(proxies, any("127.0.0.1")) {
				t.Errorf("%s does not trust nginx at 127.0.0.1 (trusted_proxies %v)", config, proxies)
			}

			systemdAnalyze(t, path, svc)
		})
	}
}

// systemdAnalyze has systemd check the unit when systemd-analyze exists:
// `verify` (syntax, directives) and `security` (exposure at most 2.0).
// The binary it names is replaced by an existing one, as it is not
// installed here.
func systemdAnalyze(t *testing.T, path, svc string) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Run("systemd-analyze", func(t *testing.T) {
			testenv.Missing(t, "systemd-analyze", "not found, the units are checked by the parser only; apt-get install systemd")
		})
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), svc+".service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/"+svc, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on unknown or misspelt directives, only warning about
	// them: any warning about the unit fails the test.
	out, err := exec.Command(tool, "verify", copyPath).CombinedOutput()
	if err != nil || strings.Contains(string(out), copyPath) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
	if out, err := exec.Command(tool, "security", "--offline=yes", "--threshold=20", copyPath).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v)\n%s", path, err, out)
	}
}

func TestNginx(t *testing.T) {
	data, err := os.ReadFile("nginx/kisee-pasee.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	var directives []string
	for _, line := range strings.Split(conf, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			directives = append(directives, line)
		}
	}
	body := strings.Join(directives, "\n")
	if strings.Count(body, "{") != strings.Count(body, "}") {
		t.Error("unbalanced braces")
	}
	for _, want := range []string{
		"proxy_set_header Host $host;",
		"proxy_set_header X-Forwarded-For $remote_addr;",
		"proxy_set_header X-Forwarded-Proto $scheme;",
		"proxy_set_header X-Forwarded-Host $host;",
		`add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;`,
		"listen 443 ssl http2;", "ssl_certificate ", "ssl_protocols TLSv1.2 TLSv1.3;",
		"return 301 https://$host$request_uri;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("nginx site lacks %q", want)
		}
	}
	// Each proxied server sets every header: two servers, each its own set.
	if n := strings.Count(body, "proxy_set_header X-Forwarded-For"); n != 2 {
		t.Errorf("X-Forwarded-For is set in %d server blocks, want 2", n)
	}
	if !strings.Contains(conf, "trusted_proxies") {
		t.Error("the site does not say the services must list nginx in trusted_proxies")
	}
	// "http2 on;" is nginx 1.25.1's spelling: older nginx (Debian 12's
	// 1.22) refuses the whole file.
	if strings.Contains(body, "http2 on") {
		t.Error(`the site uses "http2 on;", which nginx before 1.25.1 refuses; use "listen 443 ssl http2;"`)
	}
	t.Run("nginx -t", func(t *testing.T) { nginxCheck(t, conf) })
	// The upstreams are where configs/*-postgres.toml listen.
	for svc, port := range map[string]string{"kisee": "8140", "pasee": "8150"} {
		doc := readTOML(t, filepath.Join("..", "configs", svc+"-postgres.toml"))
		host, p := get(doc, "host"), doc["port"]
		if server, ok := doc["server"].(map[string]any); ok {
			host, p = server["host"].(string), server["port"]
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(p.(int64), 10))
		if addr != "127.0.0.1:"+port || !strings.Contains(body, "server "+addr+";") {
			t.Errorf("%s listens on %s; the nginx upstream must be that address", svc, addr)
		}
	}
}

// nginxCheck has the installed nginx test the site (`nginx -t`), included
// in a minimal nginx.conf as /etc/nginx/conf.d/ files are, with its
// certificate paths replaced by a self-signed certificate.
func nginxCheck(t *testing.T, site string) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			testenv.Missing(t, "nginx", "not found, the example site is checked by the parser only; apt-get install nginx-light")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cert, key)
	site = regexp.MustCompile(`ssl_certificate\s+\S+;`).ReplaceAllString(site, "ssl_certificate "+cert+";")
	site = regexp.MustCompile(`ssl_certificate_key\s+\S+;`).ReplaceAllString(site, "ssl_certificate_key "+key+";")
	sitePath := filepath.Join(dir, "kisee-pasee.conf")
	main := fmt.Sprintf("pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n    access_log off;\n    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n    include %[2]s;\n}\n", dir, sitePath)
	mainPath := filepath.Join(dir, "nginx.conf")
	for path, data := range map[string]string{sitePath: site, mainPath: main} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", "stderr", "-c", mainPath).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t on deploy/nginx/kisee-pasee.conf: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("nginx -t warns about deploy/nginx/kisee-pasee.conf:\n%s", out)
	}
}

// writeSelfSigned writes a self-signed P-256 certificate for the example
// names and its key, in PEM.
func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "id.example.com"},
		DNSNames:  []string{"id.example.com", "auth.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{certPath: {Type: "CERTIFICATE", Bytes: der}, keyPath: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The README's one-off commands name services of the compose file, and
// the upgrade notes are there.
func TestReadme(t *testing.T) {
	p := loadCompose(t)
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, want := range []string{
		"docker compose run --rm pasee append --groups staff kisee-root",
		"root password", "kisee migrate", "pasee migrate", "--no-migrate", "trusted_proxies",
		"systemctl enable --now kisee",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	commands := regexp.MustCompile(`docker compose (?:run --rm(?: -T)?(?: --entrypoint \w+)?|exec(?: -T)?|logs(?: -f)?) (\w+)`).FindAllStringSubmatch(readme, -1)
	if len(commands) < 8 {
		t.Errorf("found %d docker compose commands in README.md; the pattern no longer matches how it writes them", len(commands))
	}
	for _, m := range commands {
		if _, ok := p.Services[m[1]]; !ok {
			t.Errorf("README.md: %q names no service", m[0])
		}
	}
}

// TestComposeKiseeTrustsPaseeOnly: Pasee has a fixed address on the
// stack's network, inside its subnet, and that address is the one and only
// entry of Kisee's trusted_proxies, so that Kisee counts the clients whose
// logins Pasee forwards and believes X-Forwarded-For from nobody else.
func TestComposeKiseeTrustsPaseeOnly(t *testing.T) {
	p := loadCompose(t)
	pasee := service(t, p, "pasee")
	nw, ok := pasee.Networks["default"]
	if !ok || nw == nil || nw.Ipv4Address == "" {
		t.Fatalf("pasee has no fixed address on the default network (%+v)", pasee.Networks)
	}
	addr, err := netip.ParseAddr(nw.Ipv4Address)
	if err != nil {
		t.Fatal(err)
	}
	def := p.Networks["default"]
	if len(def.Ipam.Config) != 1 {
		t.Fatalf("default network IPAM %+v, want one fixed subnet", def.Ipam)
	}
	subnet, err := netip.ParsePrefix(def.Ipam.Config[0].Subnet)
	if err != nil || !subnet.Contains(addr) {
		t.Fatalf("pasee's address %s is not in the network's subnet %q", addr, def.Ipam.Config[0].Subnet)
	}
	if addr == subnet.Addr().Next() {
		t.Errorf("pasee's address %s is the network's gateway, from which published ports are reached", addr)
	}
	doc := readTOML(t, bindSource(t, service(t, p, "kisee"), "/etc/kisee/settings.toml"))
	server, _ := doc["server"].(map[string]any)
	proxies, _ := server["trusted_proxies"].([]any)
	if len(proxies) != 1 || proxies[0] != addr.String() {
		t.Errorf("kisee trusted_proxies = %v, want exactly [%q] (Pasee)", proxies, addr)
	}
}
