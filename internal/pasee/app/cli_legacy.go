package app

import (
	"context"
	"fmt"

	"github.com/kisee-pasee/suite/internal/pasee/importer"
)

// settingsCmd runs `pasee settings upgrade FILE`: the upgraded file on
// standard output, one line per replaced key on standard error.
func (c *command) settingsCmd(args []string) error {
	fs := c.prog.Command("settings", "upgrade FILE",
		"Print FILE, an original Pasee's settings file, rewritten for this Pasee (one line per replaced key on standard error).")
	args, err := fs.Args(args, 2, 2)
	if err != nil {
		return err
	}
	if args[0] != "upgrade" {
		return fs.Usagef("unknown settings command %q", args[0])
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
	fs := c.prog.Command("import", "--from URL [--dry-run]",
		"Copy an original Pasee's users, groups, memberships and bans into the configured store.")
	from := fs.String("from", "", "the original Pasee's database: postgres://USER@HOST/DB (schema_01.sql) or sqlite:FILE (the demo storage)")
	dry := fs.Bool("dry-run", false, "report what would change, change nothing")
	if _, err := fs.Args(args, 0, 0); err != nil {
		return err
	}
	if *from == "" {
		return fs.Usagef("missing --from URL")
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
