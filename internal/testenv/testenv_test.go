package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The real behaviour runs in a child test process: skipped and recorded
// without CI, failed under CI=true.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Missing(t, "Widget", "widgetd not found; apt-get install widgetd")
		Missing(t, "Widget", "once per suite")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(ci string) (string, string, error) {
		log := filepath.Join(t.TempDir(), "skips")
		cmd := exec.Command(exe, "-test.run", "^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+ci, SkipLogEnv+"="+log)
		out, err := cmd.CombinedOutput()
		recorded, _ := os.ReadFile(log)
		return string(out), string(recorded), err
	}

	out, recorded, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestMissing") || !strings.Contains(out, "WARNING: Widget tests are SKIPPED: widgetd not found") {
		t.Errorf("without CI: %v\n%s", err, out)
	}
	if recorded != "Widget\twidgetd not found; apt-get install widgetd\n" {
		t.Errorf("recorded %q", recorded)
	}

	out, recorded, err = run("true")
	if err == nil || !strings.Contains(out, "--- FAIL: TestMissing") || !strings.Contains(out, "CI=true, so Widget cannot be skipped") {
		t.Errorf("under CI=true: %v\n%s", err, out)
	}
	if recorded != "" {
		t.Errorf("under CI=true, recorded %q", recorded)
	}
}
