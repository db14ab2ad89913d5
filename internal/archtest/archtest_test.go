package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/kisee-pasee/suite"

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Module     *struct{ Path string }
}

// list runs `go list -json` with args from the module root.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// deps lists the packages path needs (with -test, its tests' too): their
// count, and the modules other than the standard library.
func deps(t *testing.T, test bool, path string) (n int, ours []string, modules []string) {
	t.Helper()
	args := []string{"-deps"}
	if test {
		args = append(args, "-test")
	}
	seen := map[string]bool{}
	for _, p := range list(t, append(args, path)...) {
		if p.Standard {
			n++
			continue
		}
		if test && (strings.HasSuffix(p.ImportPath, ".test") || strings.Contains(p.ImportPath, " [")) {
			continue // the test binary and the packages recompiled for it
		}
		n++
		if strings.HasPrefix(p.ImportPath, module+"/") {
			ours = append(ours, strings.TrimPrefix(p.ImportPath, module+"/"))
		}
		if p.Module != nil && !seen[p.Module.Path] {
			seen[p.Module.Path] = true
			modules = append(modules, p.Module.Path)
		}
	}
	sort.Strings(ours)
	sort.Strings(modules)
	return n, ours, modules
}

// A service that imports pkg/verify gets pkg/token's dependencies and
// nothing else: no echo, no server package, no metrics or error reporting
// libraries. Its tests need nothing more either, so that running them
// downloads nothing of the servers.
func TestVerifyStaysSmall(t *testing.T) {
	t.Parallel()
	tokenN, tokenOurs, tokenModules := deps(t, false, "./pkg/token")
	if !slices.Equal(tokenOurs, []string{"pkg/token"}) {
		t.Errorf("pkg/token imports packages of this module: %v", tokenOurs)
	}
	n, ours, modules := deps(t, false, "./pkg/verify")
	t.Logf("go list -deps ./pkg/verify: %d packages (pkg/token: %d), modules %v", n, tokenN, modules)
	if !slices.Equal(ours, []string{"pkg/token", "pkg/verify"}) {
		t.Errorf("pkg/verify needs these packages of this module: %v; want pkg/token only", ours)
	}
	if !slices.Equal(modules, tokenModules) {
		t.Errorf("pkg/verify needs the modules %v; pkg/token needs %v, and pkg/verify should add none", modules, tokenModules)
	}
	// Room for a few standard packages; the echo version was 333.
	if n > tokenN+10 {
		t.Errorf("pkg/verify needs %d packages, pkg/token %d: more than the standard library's few it should add", n, tokenN)
	}

	for _, path := range []string{"./pkg/token", "./pkg/verify", "./pkg/verify/echoverify"} {
		_, ours, testModules := deps(t, true, path)
		_, _, modules := deps(t, false, path)
		if !slices.Equal(testModules, modules) {
			t.Errorf("the tests of %s need the modules %v, the package %v: a test dependency would reach downstream users", path, testModules, modules)
		}
		for _, p := range ours {
			if strings.HasPrefix(p, "internal/") && p != "internal/httptestutil" {
				t.Errorf("the tests of %s import %s, a package of the servers", path, p)
			}
		}
	}

	_, ours, modules = deps(t, false, "./pkg/verify/echoverify")
	for _, p := range ours {
		if !strings.HasPrefix(p, "pkg/") {
			t.Errorf("pkg/verify/echoverify imports %s", p)
		}
	}
	for _, m := range modules {
		if !slices.Contains(tokenModules, m) && !strings.HasPrefix(m, "github.com/labstack/") &&
			!slices.Contains([]string{"github.com/mattn/go-colorable", "github.com/mattn/go-isatty", "github.com/valyala/bytebufferpool", "github.com/valyala/fasttemplate", "golang.org/x/net", "golang.org/x/sys", "golang.org/x/text"}, m) {
			t.Errorf("pkg/verify/echoverify needs the module %s, neither pkg/token's nor echo's", m)
		}
	}
}

// Outside internal/: the public packages import no server package (a type
// of internal/ in their API could not be named by their users, and would
// tie them to the servers); the example imports only what a downstream
// service can; the commands are wiring; the embedded files import nothing
// of ours.
func TestImportsOutsideInternal(t *testing.T) {
	t.Parallel()
	rules := []struct {
		prefix  string
		allowed func(string) bool
		what    string
	}{
		{"pkg/", func(p string) bool { return strings.HasPrefix(p, "pkg/") }, "pkg/ only"},
		{"examples/", func(p string) bool { return strings.HasPrefix(p, "pkg/") }, "pkg/ only, as a downstream service"},
		{"cmd/kisee", func(p string) bool { return p == "internal/kisee/app" }, "internal/kisee/app only"},
		{"cmd/pasee", func(p string) bool { return p == "internal/pasee/app" }, "internal/pasee/app only"},
		{"migrations", func(string) bool { return false }, "nothing of this module"},
		{"docs/", func(string) bool { return false }, "nothing of this module"},
		{"configs", func(string) bool { return false }, "nothing of this module"},
	}
	checked := 0
	for _, p := range list(t, "./...") {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if strings.HasPrefix(rel, "internal/") || strings.Contains(rel, "/internal/") {
			continue
		}
		matched := false
		for _, r := range rules {
			if !strings.HasPrefix(rel, r.prefix) {
				continue
			}
			matched = true
			checked++
			for _, imp := range p.Imports {
				if ours, ok := strings.CutPrefix(imp, module+"/"); ok && !r.allowed(ours) {
					t.Errorf("%s imports %s; it may import %s", rel, ours, r.what)
				}
			}
		}
		if !matched {
			t.Errorf("%s is outside internal/ and no rule says what it may import: add one here and to docs/architecture.md", rel)
		}
	}
	if checked < 8 {
		t.Errorf("only %d packages checked: go list found less than the tree has", checked)
	}
}

// The domain packages import pkg/token and the standard library only:
// everything else depends on them, never the reverse.
func TestDomainDependsOnNothingOfOurs(t *testing.T) {
	t.Parallel()
	for _, p := range list(t, "./internal/kisee", "./internal/pasee") {
		for _, imp := range p.Imports {
			if ours, ok := strings.CutPrefix(imp, module+"/"); ok && ours != "pkg/token" {
				t.Errorf("%s imports %s", strings.TrimPrefix(p.ImportPath, module+"/"), ours)
			}
		}
	}
}
