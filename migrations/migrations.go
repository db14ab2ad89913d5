// Package migrations embeds the goose SQL migrations of both services, one
// directory per service and dialect, so the binaries carry their schemas.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed kisee
var kisee embed.FS

// Kisee returns Kisee's migrations for dialect ("sqlite" or "postgres").
func Kisee(dialect string) (fs.FS, error) { return sub(kisee, "kisee", dialect) }

func sub(f embed.FS, service, dialect string) (fs.FS, error) {
	if dialect != "sqlite" && dialect != "postgres" {
		return nil, fmt.Errorf("no %s migrations for dialect %q", service, dialect)
	}
	return fs.Sub(f, service+"/"+dialect)
}

// KiseeTable and PaseeTable are the goose version tables: distinct, so
// both services can share one database.
const (
	KiseeTable = "kisee_goose_version"
	PaseeTable = "pasee_goose_version"
)
