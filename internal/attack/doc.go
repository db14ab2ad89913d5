// Package attack holds the attack suite of Kisee and Pasee (see
// docs/SECURITY.md): hostile tokens, headers, bodies, names, paths and
// origins sent over HTTP to a real Kisee and a real Pasee, running
// in-process behind the production HTTP server settings
// (web.Server.Serve), on SQLite and on PostgreSQL. Every attack must be
// refused with a 4xx problem document and leave both services healthy.
//
// Besides the table of attacks, the package measures user enumeration by
// timing (a rank test on the login and recovery answers), checks the
// security headers of every route, and runs the brute-force protection of
// two instances sharing one Redis. It has no code outside its tests.
package attack
