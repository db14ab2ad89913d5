// Package archtest checks the shape of the module that docs/architecture.md
// describes: what the public packages (pkg/token, pkg/verify and
// pkg/verify/echoverify) and the other packages outside internal/ may
// import, and that pkg/verify's dependencies stay those of pkg/token. It
// reads the package graph with `go list`; its only code is its test.
package archtest
