package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Program is a command with subcommands (kisee, pasee): what its usage
// texts say and where they go. Help asked for (-h, --help, help) is printed
// to Out and exits 0 without doing anything else; a command line that is
// not understood gets the error, then the usage, on Err, and exits 2.
type Program struct {
	Name string // "kisee"
	// Usage is the top-level usage: the commands and the global flags.
	Usage string
	// Global are the usage lines of the flags every subcommand accepts
	// (--settings...), repeated in each subcommand's usage.
	Global   string
	Out, Err io.Writer
}

// UsageError is a command line a command does not accept: an unknown flag,
// a missing or extra argument. Exit answers it with the error, then the
// usage, on standard error, and status 2.
type UsageError struct {
	Err   error
	Usage string
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError of the program's top level (an unknown command).
func (p *Program) Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...), Usage: p.Usage}
}

// Help prints the top-level usage to Out: the answer to "kisee --help".
func (p *Program) Help() int {
	fmt.Fprint(p.Out, p.Usage)
	return 0
}

// Exit reports err as the program's exit status: 0 for none or for help
// (already printed), 2 with the error and the usage for a UsageError, 1
// with the error for anything else. topLevel replaces the usage of a
// UsageError by the program's: for a subcommand the user did not name
// (serve, when the line is only flags).
func (p *Program) Exit(err error, topLevel bool) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		usage := ue.Usage
		if topLevel || usage == "" {
			usage = p.Usage
		}
		fmt.Fprintf(p.Err, "%s: %v\n\n%s", p.Name, ue.Err, usage)
		return 2
	default:
		fmt.Fprintf(p.Err, "%s: %v\n", p.Name, err)
		return 1
	}
}

// Command splits args into the subcommand and its arguments: the first
// argument unless it is a flag, else def. named reports whether the line
// named it. "help" is the subcommand asked for help: "kisee help migrate"
// is "kisee migrate --help", "kisee help" the top-level help (Command
// returns "help" then); so is "kisee --help migrate".
func Command(args []string, def string) (cmd string, rest []string, named bool) {
	if len(args) > 1 && isHelp(args[0]) && !strings.HasPrefix(args[1], "-") {
		return args[1], append(append([]string{}, args[2:]...), "--help"), true
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return def, args, false
	}
	if args[0] == "help" && len(args) > 1 {
		return args[1], append(append([]string{}, args[2:]...), "--help"), true
	}
	return args[0], args[1:], true
}

// WantsHelp reports whether args ask for help anywhere: -h, -help, --help.
func WantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}

// FlagSet is the flags of one subcommand, with the usage text its help
// prints.
type FlagSet struct {
	*flag.FlagSet
	prog              *Program
	name              string
	synopsis, summary string
}

// Command returns the flag set of the subcommand name. synopsis is what
// follows "kisee NAME" on the usage line ("NAME [--email E]"), summary
// what the command does.
func (p *Program) Command(name, synopsis, summary string) *FlagSet {
	fs := flag.NewFlagSet(p.Name+" "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse reports errors and help itself, once
	fs.Usage = func() {}
	return &FlagSet{FlagSet: fs, prog: p, name: name, synopsis: synopsis, summary: summary}
}

// UsageText is the subcommand's usage: its line, what it does, its flags
// and the global ones.
func (fs *FlagSet) UsageText() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Usage: %s %s", fs.prog.Name, fs.name)
	if fs.synopsis != "" {
		fmt.Fprintf(&b, " %s", fs.synopsis)
	}
	fmt.Fprintf(&b, "\n\n%s\n", fs.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		typ, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + strings.ToUpper(typ)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			help += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(&b, "%-22s %s\n", line, help)
	})
	if fs.prog.Global != "" {
		fmt.Fprintf(&b, "\nFlags of every command:\n%s", fs.prog.Global)
	}
	return b.String()
}

// Parse parses the flags, wherever they stand among args ("useradd alice
// --email a@x"), and returns the positional arguments. Help asked for
// anywhere on the line prints the usage to the program's Out and returns
// flag.ErrHelp, before anything else is looked at; a flag it does not know
// or a value it cannot read is a UsageError.
func (fs *FlagSet) Parse(args []string) ([]string, error) {
	if WantsHelp(args) {
		fmt.Fprint(fs.prog.Out, fs.UsageText())
		return nil, flag.ErrHelp
	}
	positional, err := Parse(fs.FlagSet, args)
	if err != nil {
		return nil, &UsageError{Err: err, Usage: fs.UsageText()}
	}
	return positional, nil
}

// Args parses args as Parse does and checks the number of positional
// arguments: between least and most (most < 0: no limit).
func (fs *FlagSet) Args(args []string, least, most int) ([]string, error) {
	positional, err := fs.Parse(args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(positional) < least:
		return nil, fs.Usagef("missing argument: %s %s", fs.name, fs.synopsis)
	case most >= 0 && len(positional) > most:
		return nil, fs.Usagef("unexpected argument %q", positional[most])
	}
	return positional, nil
}

// Usagef is a UsageError of this subcommand.
func (fs *FlagSet) Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...), Usage: fs.UsageText()}
}
