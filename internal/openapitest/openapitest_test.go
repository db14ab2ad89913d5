package openapitest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kisee-pasee/suite/docs/openapi"
)

func TestDescriptionsLoad(t *testing.T) {
	for name, spec := range map[string][]byte{"kisee": openapi.Kisee(), "pasee": openapi.Pasee()} {
		if _, err := New(spec); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The validator catches a response that drifted from the description: it
// must be able to fail.
func TestValidatorCatchesDrift(t *testing.T) {
	v, err := New(openapi.Kisee())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://127.0.0.1:1234/health", nil)
	good := []byte(`{"status":"green","database":"OK","version":"x"}`)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := v.Check(req, 200, h, good); err != nil {
		t.Fatalf("valid health refused: %v", err)
	}
	for name, bad := range map[string][]byte{
		"missing field": []byte(`{"status":"green","version":"x"}`),
		"bad enum":      []byte(`{"status":"blue","database":"OK","version":"x"}`),
	} {
		if err := v.Check(req, 200, h, bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	post := httptest.NewRequest("POST", "http://127.0.0.1:1234/jwt", nil)
	if err := v.Check(post, 403, problem, []byte(`{"type":"about:blank","title":"Failed identification","status":403,"_type":"error","_meta":{"title":"x"}}`)); err != nil {
		t.Fatalf("problem refused (trailing slash toggled): %v", err)
	}
	if err := v.Check(post, 403, problem, []byte(`{"error":"nope"}`)); err == nil {
		t.Fatal("a non-problem error body accepted")
	}
}
