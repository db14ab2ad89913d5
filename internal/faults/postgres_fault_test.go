package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/faults"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

const (
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
	// requestTimeout bounds every answer during the faults: a service must
	// answer (503) rather than hang while its dependency is down.
	requestTimeout = 15 * time.Second
)

// answer is one request's outcome.
type answer struct {
	status  int
	body    []byte
	json    map[string]any
	elapsed time.Duration
	err     error
}

func send(method, url string, body any, bearer string) answer {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return answer{err: err}
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 2 * requestTimeout}).Do(req)
	if err != nil {
		return answer{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: b, elapsed: time.Since(start), err: err}
	if a.err == nil && resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		a.err = fmt.Errorf("%d answered as %q, not a problem document", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// tally counts outcomes by kind of request and status.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	bad    []string
}

func (t *tally) add(kind string, a answer, okStatus int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[fmt.Sprintf("%s %d", kind, a.status)]++
	switch {
	case a.err != nil:
		t.bad = append(t.bad, fmt.Sprintf("%s: %v after %s", kind, a.err, a.elapsed))
	case a.elapsed > requestTimeout:
		t.bad = append(t.bad, fmt.Sprintf("%s: answered after %s", kind, a.elapsed))
	case a.status != okStatus && a.status != http.StatusServiceUnavailable:
		t.bad = append(t.bad, fmt.Sprintf("%s: %d %s", kind, a.status, a.body))
	}
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, t.counts[k])
	}
	return b.String()
}

// TestPostgresRestartWhileRequestsFlow runs a Kisee (sql backend and token
// store) and a Pasee on a PostgreSQL cluster of the test's own, with
// clients looping on refreshes, group reads and logins at both services;
// then it stops the cluster (pg_ctl stop -m fast), starts it again, and
// checks that every answer meanwhile was a success or a 503 problem
// document (never a 500, never a hang), that both services recover by
// themselves, and that no refresh left a session half-rotated: each
// client's last refresh token, whether its last refresh succeeded or
// failed, still rotates.
func TestPostgresRestartWhileRequestsFlow(t *testing.T) {
	pg := faults.StartPostgres(t)
	db := pg.URL()
	k := kiseetest.StartSQL(t, fmt.Sprintf("[identity_backend.options]\nurl = %q\n[storage]\nurl = %q\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 100000\n", db, db))
	p := paseetest.Start(t, paseetest.Postgres, fmt.Sprintf("[storage]\nurl = %q\n[rate_limit]\nmax_failures = 100000\n", db)+paseetest.KiseeProvider("kisee", k.URL))
	if err := p.App.Store.AddMember(context.Background(), "test", "staff", "kisee-bob", time.Now()); err != nil {
		t.Fatal(err)
	}

	type session struct {
		mu              sync.Mutex
		access, refresh string
	}
	const clients = 4
	sessions := make([]*session, clients)
	for i := range sessions {
		a := send("POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": "bob", "password": bobPassword}, "")
		if a.status != 201 {
			t.Fatalf("login: %d %s %v", a.status, a.body, a.err)
		}
		sessions[i] = &session{access: a.json["access_token"].(string), refresh: a.json["refresh_token"].(string)}
	}

	var during, before tally
	var phase atomic.Int32 // 0: before the outage, 1: from the stop on
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(s *session) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				tl := &before
				if phase.Load() > 0 {
					tl = &during
				}
				s.mu.Lock()
				a := send("POST", p.URL+"/tokens/?refresh", nil, s.refresh)
				if a.status == 201 {
					s.access, s.refresh = a.json["access_token"].(string), a.json["refresh_token"].(string)
				}
				s.mu.Unlock()
				tl.add("pasee refresh", a, 201)
				tl.add("pasee group read", send("GET", p.URL+"/groups/staff/", nil, s.access), 200)
				if n%3 == 0 {
					tl.add("pasee login", send("POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": "alice", "password": alicePassword}, ""), 201)
					tl.add("kisee login", send("POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}, ""), 201)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}(sessions[i])
	}

	time.Sleep(time.Second)
	phase.Store(1)
	pg.Stop()
	time.Sleep(2 * time.Second)
	for _, u := range []string{k.URL, p.URL} {
		if a := send("GET", u+"/health", nil, ""); a.status != 503 || a.json["status"] != "red" {
			t.Errorf("%s/health with the database down: %d %s", u, a.status, a.body)
		}
	}
	pg.Start()
	// Both recover by themselves: health is green again within seconds.
	for _, u := range []string{k.URL, p.URL} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if a := send("GET", u+"/health", nil, ""); a.status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not recover within 30 s of the restart", u)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	t.Logf("before the outage: %s", &before)
	t.Logf("during and after: %s", &during)
	if len(before.bad) > 0 {
		t.Errorf("before the outage: %d bad answers, first: %s", len(before.bad), before.bad[0])
	}
	for _, b := range during.bad {
		t.Errorf("during the outage: %s", b)
	}
	if during.counts["pasee refresh 503"]+during.counts["pasee group read 503"] == 0 {
		t.Error("no request met the outage: the test did not test it")
	}
	// Nothing half-written: every client's latest pair still works.
	for i, s := range sessions {
		a := send("POST", p.URL+"/tokens/?refresh", nil, s.refresh)
		if a.status != 201 {
			t.Errorf("client %d: its last refresh token after the restart: %d %s", i, a.status, a.body)
			continue
		}
		if g := send("GET", p.URL+"/groups/staff/", nil, a.json["access_token"].(string)); g.status != 200 {
			t.Errorf("client %d: its new access token: %d %s", i, g.status, g.body)
		}
	}
	for _, u := range []string{k.URL + "/jwt/", p.URL + "/tokens/?idp=kisee"} {
		if a := send("POST", u, map[string]string{"username": "alice", "login": "alice", "password": alicePassword}, ""); a.status != 201 {
			t.Errorf("login at %s after the restart: %d %s", u, a.status, a.body)
		}
	}
}

// TestPostgresCrashLosesNoAcknowledgedRefresh crashes PostgreSQL (pg_ctl
// stop -m immediate: no checkpoint, recovery from the write-ahead log)
// while sixteen clients refresh as fast as they can, so that rotations go
// in batches, one commit for several (group commit). Every refresh Pasee
// answered 201 must have survived: after recovery each client's last
// acknowledged refresh token must still be the session's live one, else it
// is a token the session never had, answered 401 with the session
// revoked. This holds because a rotation is answered only after its
// statement's COMMIT returned, and under synchronous_commit = on (the
// default) COMMIT returns only once the
// commit is written to the log. (The test cluster runs with
// synchronous_commit = off for speed; Pasee's connections here ask for on,
// and with off this test fails: acknowledged rotations are lost.) A
// refresh that failed meanwhile may or may not have been committed: its
// client's next refresh is then a replay within the grace window, answered
// with the same pair.
func TestPostgresCrashLosesNoAcknowledgedRefresh(t *testing.T) {
	pg := faults.StartPostgres(t)
	db := pg.URL() + "&synchronous_commit=on"
	k := kiseetest.StartSQL(t, fmt.Sprintf("[identity_backend.options]\nurl = %q\n[storage]\nurl = %q\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 100000\n", db, db))
	p := paseetest.Start(t, paseetest.Postgres, fmt.Sprintf("[jwt]\nrefresh_reuse_grace = \"10m\"\n[storage]\nurl = %q\n[rate_limit]\nmax_failures = 100000\n", db)+paseetest.KiseeProvider("kisee", k.URL))

	const clients = 16
	acked := make([]string, clients)
	for i := range acked {
		a := send("POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": "bob", "password": bobPassword}, "")
		if a.status != 201 {
			t.Fatalf("login: %d %s %v", a.status, a.body, a.err)
		}
		acked[i] = a.json["refresh_token"].(string)
	}
	var (
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		refreshed atomic.Int64
		tl        tally
	)
	for i := range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := send("POST", p.URL+"/tokens/?refresh", nil, acked[i])
				tl.add("pasee refresh", a, 201)
				if a.status == 201 {
					acked[i] = a.json["refresh_token"].(string)
					refreshed.Add(1)
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	// Crash in the middle of the flow.
	for refreshed.Load() < 500 {
		time.Sleep(5 * time.Millisecond)
	}
	pg.Crash()
	time.Sleep(500 * time.Millisecond)
	pg.Start()
	deadline := time.Now().Add(30 * time.Second)
	for send("GET", p.URL+"/health", nil, "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("Pasee did not recover within 30 s of the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d refreshes answered 201; %s", refreshed.Load(), &tl)
	for _, b := range tl.bad {
		t.Errorf("during the crash: %s", b)
	}
	if tl.counts["pasee refresh 503"] == 0 {
		t.Error("no refresh met the crash: the test did not test it")
	}
	for i, raw := range acked {
		if a := send("POST", p.URL+"/tokens/?refresh", nil, raw); a.status != 201 {
			t.Errorf("client %d: its last acknowledged refresh token after the crash: %d %s", i, a.status, a.body)
		}
	}
}
