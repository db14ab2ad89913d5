package faults_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/faults"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// hangingKisee answers its JSON-Home like a Kisee, then never answers a
// login: each POST /jwt/ waits until the caller gives up (or, with slow
// set, answers 403 after it).
func hangingKisee(t *testing.T, slow time.Duration) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "application/json-home")
			fmt.Fprint(w, `{"api":{"title":"Identification Provider"},"resources":{"jwt":{"href":"/jwt/"},"jwks":{"href":"/jwks.json"}}}`)
			return
		}
		// Read the body first: net/http notices a client hanging up (and
		// cancels r.Context()) only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		if slow > 0 {
			select {
			case <-time.After(slow):
				http.Error(w, `{"title":"Failed identification"}`, http.StatusForbidden)
			case <-r.Context().Done():
			}
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	return s
}

// TestUpstreamProviderSlowOrDown: Pasee's providers hang, are slow beyond
// their timeout, refuse connections, or accept them and never answer.
// Every login answers 503 "<name> not responding" within the provider's
// timeout (300 ms here), and after 200 logins to a hanging provider the
// goroutines of the process come back to where they were: nothing piles
// up behind a provider that does not answer.
func TestUpstreamProviderSlowOrDown(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hang, slow := hangingKisee(t, 0), hangingKisee(t, 2*time.Second)
	down := faults.NewProxy(t, "127.0.0.1:1")
	if err := down.Set(faults.Down); err != nil {
		t.Fatal(err)
	}
	mute := faults.NewProxy(t, "127.0.0.1:1")
	if err := mute.Set(faults.Hang); err != nil {
		t.Fatal(err)
	}
	doc := "[rate_limit]\nmax_failures = 100000\n"
	for name, url := range map[string]string{"hang": hang.URL, "slow": slow.URL, "down": "http://" + down.Addr, "mute": "http://" + mute.Addr} {
		doc += fmt.Sprintf("[[identity_providers]]\nname = %q\nprotocol = \"kisee\"\nendpoint = %q\n[identity_providers.settings]\ntimeout = %q\n", name, url, timeout.String())
	}
	p := paseetest.Start(t, paseetest.SQLite, doc)

	// Requests on fresh connections, so that idle keep-alive connections
	// of the test's own client do not count as goroutines left behind.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	login := func(idp string) (int, string, time.Duration, error) {
		start := time.Now()
		resp, err := c.Post(p.URL+"/tokens/?idp="+idp, "application/json", strings.NewReader(`{"login":"alice","password":"x"}`))
		if err != nil {
			return 0, "", time.Since(start), err
		}
		defer resp.Body.Close()
		var doc struct {
			Title string `json:"title"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		if resp.Header.Get("Content-Type") != "application/problem+json" {
			err = fmt.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, doc.Title, time.Since(start), err
	}
	// One of each first: what a process starts lazily (the providers'
	// clients, the JSON-Home cache) is there before counting.
	for _, idp := range []string{"hang", "slow", "down", "mute"} {
		status, title, d, err := login(idp)
		if err != nil || status != 503 || title != idp+" not responding" || d > timeout+2*time.Second {
			t.Fatalf("%s: %d %q after %s (%v)", idp, status, title, d, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	before := runtime.NumGoroutine()

	const requests, workers = 200, 20
	var mu sync.Mutex
	var slowest time.Duration
	var bad []string
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idp := range jobs {
				status, title, d, err := login(idp)
				mu.Lock()
				slowest = max(slowest, d)
				if err != nil || status != 503 || title != idp+" not responding" || d > timeout+2*time.Second {
					bad = append(bad, fmt.Sprintf("%s: %d %q after %s (%v)", idp, status, title, d, err))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range requests {
		jobs <- "hang"
		if i%10 == 0 {
			jobs <- []string{"slow", "down", "mute"}[i/10%3]
		}
	}
	close(jobs)
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("slowest answer %s (provider timeout %s)", slowest, timeout)
	// The slow provider's handlers end 2 s after their request; the rest
	// at once.
	settle(t, before, 15)
	// Every provider down: no login can be served, /health says so, and
	// answers at once all the same.
	if a := send("GET", p.URL+"/health", nil, ""); a.status != 503 || !strings.Contains(string(a.body), `"down":"KO"`) {
		t.Fatalf("Pasee's health with its providers down: %d %s", a.status, a.body)
	}
}
