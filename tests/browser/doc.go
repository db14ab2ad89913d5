// Package browser holds the end-to-end tests that drive the example apps
// of examples/ and Pasee's administration page (/admin/) in a real
// headless Chromium (Debian packages chromium and chromium-driver), against
// real Kisee, Pasee and OAuth 2.0 servers.
//
// Without /usr/bin/chromium the tests skip with a loud warning, except
// under CI=true, where they fail.
package browser
