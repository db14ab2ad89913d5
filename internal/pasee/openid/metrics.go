package openid

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count what the provider does, on /metrics.
type metrics struct {
	authorizations *prometheus.CounterVec // result: code, login_page, error, login_required
	logins         *prometheus.CounterVec // result: ok, refused, locked, banned, error
	tokens         *prometheus.CounterVec // grant, result: ok, error
	logouts        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pasee_oidc_authorizations_total",
			Help: "Authorization requests of OpenID clients, by outcome."}, []string{"client", "result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pasee_oidc_logins_total",
			Help: "Logins on the OpenID Provider's login page, by outcome."}, []string{"result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pasee_oidc_token_requests_total",
			Help: "Token endpoint requests, by grant type and outcome."}, []string{"grant", "result"}),
		logouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "pasee_oidc_logouts_total",
			Help: "Single sign-on sessions ended by RP-initiated logout."}),
	}
	if reg != nil {
		reg.MustRegister(m.authorizations, m.logins, m.tokens, m.logouts)
	}
	return m
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
