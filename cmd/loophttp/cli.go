package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errHelpShown reports that a command printed its usage because -h,
// -help or --help asked for it: the command succeeded.
var errHelpShown = errors.New("help shown")

// usageError is a bad flag, argument or value: the command prints it on
// one line with a hint, and exits 2.
type usageError struct {
	cmd string // the command's name: serve, get, load, version, or "" for loophttp itself
	msg string
}

func (e *usageError) Error() string { return e.msg }

// newFlagSet returns a flag set that prints nothing itself: parseArgs
// reports its errors, and usage goes where the command says.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// usagef returns a usageError for the command of fs.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	return &usageError{cmd: fs.Name(), msg: fmt.Sprintf(format, args...)}
}

// parseArgs parses args with fs and returns the positional arguments.
// Flags may follow them (`get URL -i`), except after "--". On -h, -help or
// --help it prints the usage on out and returns errHelpShown; a bad flag
// or value is a usageError.
func parseArgs(fs *flag.FlagSet, args []string, synopsis, about string, out io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, fs, synopsis, about)
			return nil, errHelpShown
		}
		if err != nil {
			return nil, usagef(fs, "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// printUsage writes a command's synopsis, description and flags.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis, about string) {
	fmt.Fprintf(w, "%s\n\n", synopsis)
	if about != "" {
		fmt.Fprintf(w, "%s\n\n", about)
	}
	fmt.Fprintln(w, "Flags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// headerFlags collects repeated -H 'Name: value' flags, in order.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// readBody reads a body flag: literal data, @file, or (when stdin is not
// nil) @- for standard input. "" is no body.
func readBody(d string, stdin io.Reader) ([]byte, error) {
	switch {
	case d == "":
		return nil, nil
	case d == "@-" && stdin != nil:
		return io.ReadAll(stdin)
	case strings.HasPrefix(d, "@"):
		return os.ReadFile(d[1:])
	}
	return []byte(d), nil
}
