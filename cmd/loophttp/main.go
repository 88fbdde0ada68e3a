// Command loophttp serves loophttp's demo application, fetches URLs, and
// generates HTTP load, all on loophttp's event loops.
//
//	loophttp                  serve the demo on 127.0.0.1:8080
//	loophttp serve [flags]    the same, with -addr, -loops, -pin, -reuseport, -timeout, -grace, -max-body, -inspect, -quiet, -cpuprofile
//	loophttp get [flags] URL  one request: the body (-i with the head, -v with both heads on stderr, -json all of it)
//	loophttp load [flags] URL load on keep-alive (or pipelined, or rate-limited) connections: requests/s, latency, errors
//	loophttp version          the module's version and the Go version it was built with
//	loophttp help [command]   usage
//
// Demo endpoints: / (text), /json, /anything (the request as JSON),
// /echo, /status/{code}, /bytes/{n}, /stream/{n} (chunked lines),
// /delay/{ms} (answered from a timer). With -inspect every request gets its
// JSON description. SIGTERM or Ctrl-C stops gracefully (within -grace; a
// second signal stops at once).
//
// Every command takes -h (or -help, --help) and prints its usage on
// standard output. A bad flag, argument or value prints one line and a
// hint on standard error and exits 2; get and load document their other
// exit statuses in their usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, notifyInterrupt))
}

// notifyInterrupt delivers Ctrl-C (SIGINT) and SIGTERM (what systemd,
// Docker and Kubernetes send to stop a process) to the channel it returns,
// instead of ending the process. It holds two: serve stops at once on the
// second.
func notifyInterrupt() <-chan os.Signal {
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return c
}

const topUsage = `loophttp: an HTTP/1.1 server and client on event loops. The binary serves a
demo application, fetches URLs like curl, and generates load like wrk.

Usage:
  loophttp [serve flags]     serve the demo on 127.0.0.1:8080 (as serve)
  loophttp serve [flags]     serve the demo application
  loophttp get [flags] URL   make one request and print the response body
  loophttp load [flags] URL  generate load: requests/s, latency, status, errors
  loophttp version           print the module and Go versions
  loophttp help [command]    print this text, or a command's usage

Run 'loophttp help COMMAND' or 'loophttp COMMAND -h' for a command's flags.
`

// run runs the command line args and returns the exit status. interrupts
// starts delivering Ctrl-C to a channel (serve and load stop on it); the
// other commands leave Ctrl-C alone.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, interrupts func() <-chan os.Signal) int {
	cmd := "serve"
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		cmd, args = "help", nil
	case len(args) == 1 && (args[0] == "-version" || args[0] == "--version"):
		cmd, args = "version", nil
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout, interrupts)
	case "get":
		err = get(args, stdin, stdout, stderr)
	case "load":
		err = load(args, stdout, stderr, interrupts())
	case "version":
		err = version(args, stdout)
	case "help":
		err = help(args, stdout)
	default:
		err = &usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
	}
	return exitStatus(cmd, err, stderr)
}

// exitStatus reports the error of the command cmd on stderr, on one line,
// and returns the exit status for it.
func exitStatus(cmd string, err error, stderr io.Writer) int {
	var ue *usageError
	var te *timeoutError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		name, hint := "loophttp", "loophttp help"
		if ue.cmd != "" {
			name, hint = "loophttp "+ue.cmd, "loophttp "+ue.cmd+" -h"
		}
		fmt.Fprintf(stderr, "%s: %s\nRun '%s' for usage.\n", name, ue.msg, hint)
		return 2
	case errors.As(err, &te):
		fmt.Fprintf(stderr, "loophttp %s: %v\n", cmd, err)
		return 3
	}
	fmt.Fprintf(stderr, "loophttp %s: %v\n", cmd, err)
	return 1
}

// help prints the usage of loophttp, or of the command named in args.
func help(args []string, out io.Writer) error {
	switch {
	case len(args) == 0:
		_, err := io.WriteString(out, topUsage)
		return err
	case len(args) > 1:
		return &usageError{cmd: "help", msg: fmt.Sprintf("want at most one command, got %q", args)}
	}
	switch args[0] {
	case "serve":
		return serve([]string{"-h"}, out, nil)
	case "get":
		return get([]string{"-h"}, nil, out, io.Discard)
	case "load":
		return load([]string{"-h"}, out, io.Discard, nil)
	case "version":
		return version([]string{"-h"}, out)
	case "help":
		_, err := io.WriteString(out, topUsage)
		return err
	}
	return &usageError{cmd: "help", msg: fmt.Sprintf("unknown command %q", args[0])}
}

// version prints the module's version (a tag for `go install ...@v1.2.3`,
// "(devel)" in a clone) with its commit when known, and the Go version.
func version(args []string, out io.Writer) error {
	fs := newFlagSet("version")
	pos, err := parseArgs(fs, args, "usage: loophttp version", "Prints the module's version, its commit when known, and the Go version.", out)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}
	_, err = fmt.Fprintln(out, versionLine())
	return err
}

func versionLine() string {
	v, extra := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			extra = " commit " + rev[:min(12, len(rev))]
			if modified == "true" {
				extra += " (modified)"
			}
		}
	}
	return fmt.Sprintf("loophttp %s%s %s %s/%s", v, extra, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
