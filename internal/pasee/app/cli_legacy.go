package app

import (
	"context"
	"flag"

	"errors"
	"fmt"
	"github.com/kisee-pasee/suite/internal/cmdline"
	"github.com/kisee-pasee/suite/internal/pasee/importer"
)

// settingsCmd runs `pasee settings upgrade FILE`: the upgraded file on
// standard output, one line per replaced key on standard error.
func (c *command) settingsCmd(args []string) error {
	if len(args) != 2 || args[0] != "upgrade" {
		return errors.New("usage: pasee settings upgrade FILE")
	}
	out, legacy, err := UpgradeSettings(args[1])
	if err != nil {
		return err
	}
	for _, k := range legacy {
		fmt.Fprintln(c.io.Err, k.Warning(args[1]))
	}
	if len(legacy) == 0 {
		fmt.Fprintln(c.io.Err, args[1]+": no setting of the original Pasee found; the file is printed as read")
	}
	_, err = c.io.Out.Write(out)
	return err
}

// importCmd runs `pasee import --from URL [--dry-run]`: an original
// Pasee's database into the configured store.
func (c *command) importCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(c.io.Err)
	from := fs.String("from", "", "the original Pasee's database: postgres://USER@HOST/DB (schema_01.sql) or sqlite:FILE (the demo storage)")
	dry := fs.Bool("dry-run", false, "report what would change, change nothing")
	rest, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if *from == "" || len(rest) > 0 {
		return errors.New("usage: pasee import --from URL [--dry-run]")
	}
	original, err := importer.Read(ctx, *from)
	if err != nil {
		return err
	}
	st, known, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	report, err := importer.Import(ctx, st, original, importer.Options{Known: known, DryRun: *dry})
	report.Write(c.io.Out)
	return err
}
