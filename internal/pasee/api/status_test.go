package api_test

import (
	"net"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// /status shows the store and the providers, the keys, and the last hour
// of logins, failures, refreshes and reuse detections; as HTML for people
// and as JSON.
func TestStatusPage(t *testing.T) {
	s := start(t, paseetest.SQLite, "[jwt]\nrefresh_reuse_grace = \"0s\"\n")
	p := s.login(t, "alice", alicePassword)
	Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", map[string]string{"login": "alice", "password": "wrong"}).WantProblem(t, 403, "Can not authenticate on kisee")
	Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(p.refresh)...).WantStatus(t, 201)
	Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(p.refresh)...).WantProblem(t, 401, "Refresh token reused")

	r := Do(t, "GET", s.pasee.URL+"/status", nil, "Accept", "application/json").WantStatus(t, 200)
	last, _ := r.JSON["last_hour"].(map[string]any)
	if r.JSON["healthy"] != true || r.JSON["service"] != "Pasee" || last["successful logins"] != float64(1) || last["failed logins"] != float64(1) ||
		last["token refreshes"] != float64(1) || last["refresh token reuse detected"] != float64(1) {
		t.Fatalf("status %s", r.Body)
	}
	checks := map[string]bool{}
	for _, c := range r.JSON["checks"].([]any) {
		checks[c.(map[string]any)["name"].(string)] = c.(map[string]any)["ok"].(bool)
	}
	if len(checks) != 2 || !checks["store"] || !checks["provider kisee (kisee)"] {
		t.Fatalf("checks %v", checks)
	}
	keys, _ := r.JSON["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kid"] != s.pasee.Key.KeyID() {
		t.Fatalf("keys %v", keys)
	}
	h := Do(t, "GET", s.pasee.URL+"/status", nil, "Accept", "text/html").WantStatus(t, 200)
	if !strings.Contains(string(h.Body), "Pasee status") || !strings.Contains(h.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("HTML status: %v %.200s", h.Header, h.Body)
	}
	// The same counts are Prometheus counters.
	m := string(Do(t, "GET", s.pasee.URL+"/metrics", nil).WantStatus(t, 200).Body)
	for _, want := range []string{`pasee_logins_total{result="success"} 1`, `pasee_logins_total{result="failure"} 1`, `pasee_refreshes_total 1`, `pasee_refresh_reuse_detected_total 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A provider that does not answer makes Pasee unhealthy on /status (503),
// naming it; /health, which load balancers use, names it KO and is red
// because no login can be served without it.
func TestStatusPageShowsAProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/"
	ln.Close()
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", down))
	r := Do(t, "GET", p.URL+"/status?format=json", nil).WantStatus(t, 503)
	if r.JSON["healthy"] != false || !strings.Contains(string(r.Body), `{"name":"provider kisee (kisee)","ok":false}`) {
		t.Fatalf("status %s", r.Body)
	}
	h := Do(t, "GET", p.URL+"/health", nil).WantStatus(t, 503)
	if !strings.Contains(string(h.Body), `"providers":{"kisee":"KO"}`) {
		t.Fatalf("health %s", h.Body)
	}
}
