// Package openapi embeds the OpenAPI 3.1 descriptions of Kisee's and
// Pasee's HTTP APIs. The services serve them at /openapi.yaml, and the
// HTTP tests validate every response they receive against them, so the
// descriptions cannot drift from the code.
package openapi

import _ "embed"

//go:embed kisee.yaml
var kisee []byte

//go:embed pasee.yaml
var pasee []byte

// Kisee returns Kisee's description (YAML).
func Kisee() []byte { return kisee }

// Pasee returns Pasee's description (YAML).
func Pasee() []byte { return pasee }
