package verify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kisee-pasee/suite/pkg/verify"
)

// service is a downstream service on net/http protected by the
// middlewares: what the tests call.
func service(t *testing.T, v *verify.Verifier, opts ...verify.MiddlewareOption) string {
	t.Helper()
	auth := verify.Middleware(v, opts...)
	optional := verify.Middleware(v, verify.Optional())
	mux := http.NewServeMux()
	mux.Handle("/me", auth(me))
	mux.Handle("/articles", auth(verify.RequireGroupTree("articles")(me)))
	mux.Handle("/admin", auth(verify.RequireGroups("staff")(me)))
	mux.Handle("/both", auth(verify.RequireAllGroups("staff", "articles.writers")(me)))
	mux.Handle("/maybe", optional(me))
	mux.Handle("/maybe/articles", optional(verify.RequireGroupTree("articles")(me)))
	mux.Handle("/forgot", verify.RequireGroups("staff")(me)) // no Middleware: a programming error
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// me answers the caller's identity, or {"anonymous": true}.
var me = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	id, ok := verify.IdentityFrom(r.Context())
	if !ok {
		_ = json.NewEncoder(w).Encode(map[string]any{"anonymous": true})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"subject": id.Subject, "groups": id.Groups, "idp": id.IDP, "sid": id.SessionID})
})
