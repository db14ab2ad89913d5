package app

import (
	"errors"
	"fmt"
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
