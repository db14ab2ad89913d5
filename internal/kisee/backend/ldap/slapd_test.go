package ldap_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/testenv"
)

const (
	slapdPath = "/usr/sbin/slapd"
	suffix    = "dc=example,dc=com"
	peopleDN  = "ou=people," + suffix
	rootDN    = "cn=admin," + suffix
	rootPW    = "root secret"
	serviceDN = "cn=kisee,ou=services," + suffix
	servicePW = "service secret ✓"
)

// slapd is an OpenLDAP server started for one test function, listening
// on ldap:// (StartTLS offered) and ldaps:// on the loopback interface.
type slapd struct {
	URL      string // ldap://127.0.0.1:port
	LDAPSURL string // ldaps://127.0.0.1:port
	CAFile   string // the CA that signed the server's certificate
	OtherCA  string // a CA that did not
	Started  time.Duration
}

// startSlapd starts slapd with the mdb backend, seeded with
// backendtest.Users under ou=people and the service account. Without
// slapd the test is skipped loudly, or fails under CI=true.
func startSlapd(t *testing.T) *slapd {
	t.Helper()
	if _, err := os.Stat(slapdPath); err != nil {
		testenv.Missing(t, "LDAP", fmt.Sprintf("%s not found (%v); apt-get install slapd ldap-utils", slapdPath, err))
	}
	dir := t.TempDir()
	s := &slapd{CAFile: filepath.Join(dir, "ca.pem"), OtherCA: filepath.Join(dir, "other-ca.pem")}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writeCerts(t, s.CAFile, s.OtherCA, certFile, keyFile)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(slapdConf(dir, certFile, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lastErr error
	for range 3 { // a free port may be taken between the probe and slapd's bind
		p1, p2 := freePort(t), freePort(t)
		s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", p1)
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
		if lastErr = s.run(t, conf); lastErr == nil {
			s.Started = time.Since(start)
			s.seed(t)
			return s
		}
	}
	t.Fatalf("slapd did not start: %v", lastErr)
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects slapd's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run starts slapd in the foreground (-d 0: no debug output, no
// daemonizing) and waits until the root DN can bind.
func (s *slapd) run(t *testing.T, conf string) error {
	out := &syncBuffer{}
	cmd := exec.Command(slapdPath, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-f", conf, "-d", "0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("slapd exited: %s", out)
		default:
		}
		if c, err := goldap.DialURL(s.URL); err == nil {
			err = c.Bind(rootDN, rootPW)
			c.Close()
			if err == nil {
				t.Cleanup(stop)
				return nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("slapd does not answer after 10s: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func slapdConf(dir, certFile, keyFile string) string {
	return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile ` + filepath.Join(dir, "slapd.pid") + `
argsfile ` + filepath.Join(dir, "slapd.args") + `
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile ` + certFile + `
TLSCertificateKeyFile ` + keyFile + `

database mdb
maxsize 16777216
suffix "` + suffix + `"
rootdn "` + rootDN + `"
rootpw "` + rootPW + `"
directory ` + filepath.Join(dir, "db") + `

# Passwords are only good for binding. Entries are visible to the
# service account and to their owner, as in a real directory: a
# connection left bound as a user would not see other users.
access to attrs=userPassword
	by anonymous auth
	by * none
access to *
	by dn.exact="` + serviceDN + `" read
	by self read
	by * none
`
}

// ssha is OpenLDAP's {SSHA} password scheme.
func ssha(pw string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.Sum(append([]byte(pw), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

// seed adds the entries every test uses: backendtest.Users (alice with an
// {SSHA} password, bob with a clear one, which slapd accepts too), the
// service account, and two users sharing a surname.
func (s *slapd) seed(t *testing.T) {
	t.Helper()
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(rootDN, rootPW); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		dn    string
		attrs map[string][]string
	}
	person := func(uid, mail, pw, sn string, extra map[string][]string) entry {
		a := map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {uid}, "sn": {sn}, "mail": {mail}, "userPassword": {pw},
		}
		for k, v := range extra {
			a[k] = v
		}
		return entry{"uid=" + uid + "," + peopleDN, a}
	}
	alice, bob := backendtest.Users[0], backendtest.Users[1]
	for _, e := range []entry{
		{suffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		{peopleDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		{"ou=services," + suffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"services"}}},
		{serviceDN, map[string][]string{"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"kisee"}, "userPassword": {ssha(servicePW)}}},
		person(alice.Username, alice.Email, ssha(alice.Password), "Liddell", map[string][]string{
			"ou": {"research"}, "departmentNumber": {"42", "7"},
		}),
		person(bob.Username, bob.Email, bob.Password, "Builder", map[string][]string{"ou": {"engineering"}}),
		person("twin1", "twin1@example.org", "twin password", "Twin", nil),
		person("twin2", "twin2@example.org", "twin password", "Twin", nil),
	} {
		req := goldap.NewAddRequest(e.dn, nil)
		for k, v := range e.attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", e.dn, err)
		}
	}
}

// writeCerts writes a CA, a server certificate it signs for 127.0.0.1 and
// localhost, the server's key, and an unrelated CA.
func writeCerts(t *testing.T, caFile, otherCAFile, certFile, keyFile string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	tmpl := func(cn string, ca bool) *x509.Certificate {
		serial++
		c := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		}
		if ca {
			c.IsCA, c.BasicConstraintsValid = true, true
			c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		} else {
			c.KeyUsage = x509.KeyUsageDigitalSignature
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			c.DNSNames = []string{"localhost"}
		}
		return c
	}
	writePEM := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey, otherKey, srvKey := newKey(), newKey(), newKey()
	caTmpl := tmpl("Kisee test CA", true)
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(caFile, "CERTIFICATE", caDER)
	otherTmpl := tmpl("Unrelated CA", true)
	otherDER, err := x509.CreateCertificate(rand.Reader, otherTmpl, otherTmpl, &otherKey.PublicKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(otherCAFile, "CERTIFICATE", otherDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, tmpl("127.0.0.1", false), caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(certFile, "CERTIFICATE", srvDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(keyFile, "PRIVATE KEY", keyDER)
}

// proxy forwards TCP connections to a server; it counts the connections
// open at once and can cut them all, as a directory restart or an idle
// timeout would.
type proxy struct {
	Addr   string
	target string
	l      net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	open    int
	maxOpen int
	total   int
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { l.Close(); p.CutAll() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.open++
	p.total++
	p.maxOpen = max(p.maxOpen, p.open)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // one side closed: the connection is over
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.open--
	p.mu.Unlock()
	c.Close()
	up.Close()
	<-done
}

// CutAll closes every connection going through the proxy.
func (p *proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Stats returns the most connections open at once, and the total.
func (p *proxy) Stats() (maxOpen, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxOpen, p.total
}

// hostPort returns the host:port of an ldap:// URL.
func hostPort(u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, "ldap://"), "ldaps://")
}
