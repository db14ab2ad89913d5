// Package verifye2e tests pkg/verify and pkg/verify/echoverify against a
// real Kisee and Pasee: real logins, real tokens, Pasee's own refusals to
// compare with. It lives apart from pkg/verify so that the tests of the
// client library, which a downstream user may run, do not depend on the
// servers.
package verifye2e
