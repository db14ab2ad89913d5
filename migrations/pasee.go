package migrations

import (
	"embed"
	"io/fs"
)

//go:embed pasee
var pasee embed.FS

// Pasee returns Pasee's migrations for dialect ("sqlite" or "postgres").
func Pasee(dialect string) (fs.FS, error) { return sub(pasee, "pasee", dialect) }
