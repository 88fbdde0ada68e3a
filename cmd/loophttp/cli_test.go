package main

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
)

// runCLI runs the command line args and returns its output and status.
func runCLI(args ...string) (stdout, stderr string, status int) {
	var out, errOut bytes.Buffer
	status = run(args, strings.NewReader(""), &out, &errOut, func() <-chan os.Signal {
		c := make(chan os.Signal, 1)
		c <- os.Interrupt // serve stops at once
		return c
	})
	return out.String(), errOut.String(), status
}

// TestCLIHelp: help on every level goes to stdout with status 0.
func TestCLIHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "loophttp load [flags] URL"},
		{[]string{"-h"}, "loophttp version"},
		{[]string{"--help"}, "loophttp get [flags] URL"},
		{[]string{"-help"}, "loophttp serve [flags]"},
		{[]string{"help", "help"}, "loophttp help [command]"},
		{[]string{"serve", "-h"}, "usage: loophttp serve [flags]"},
		{[]string{"serve", "--help"}, "-inspect"},
		{[]string{"get", "-h"}, "usage: loophttp get [flags] URL"},
		{[]string{"get", "--help"}, "Exit status: 0"},
		{[]string{"get", "http://127.0.0.1:1/", "-h"}, "-max-time"},
		{[]string{"load", "-help"}, "usage: loophttp load [flags] URL"},
		{[]string{"load", "--help"}, "coordinated omission"},
		{[]string{"version", "-h"}, "usage: loophttp version"},
		{[]string{"help", "serve"}, "usage: loophttp serve [flags]"},
		{[]string{"help", "get"}, "-o string"},
		{[]string{"help", "load"}, "-R float"},
		{[]string{"help", "version"}, "usage: loophttp version"},
	}
	for _, tt := range tests {
		out, errOut, status := runCLI(tt.args...)
		if status != 0 || errOut != "" || !strings.Contains(out, tt.want) {
			t.Errorf("%q: status %d, stderr %q, stdout lacks %q:\n%s", tt.args, status, errOut, tt.want, out)
		}
	}
}

// TestCLIUsageErrors: a bad command, flag, argument or value prints one
// line and a hint on stderr, nothing on stdout, and exits 2.
func TestCLIUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // the first line
	}{
		{[]string{"nope"}, `loophttp: unknown command "nope"`},
		{[]string{"help", "nope"}, `loophttp help: unknown command "nope"`},
		{[]string{"-nope"}, "loophttp serve: flag provided but not defined: -nope"},
		{[]string{"serve", "extra"}, `loophttp serve: unexpected argument "extra" (serve takes flags only)`},
		{[]string{"serve", "-loops", "-3"}, "loophttp serve: -loops -3: want 0 (one per CPU) or more"},
		{[]string{"serve", "-keepalive", "-1s"}, "loophttp serve: -keepalive -1s: want 0 (for ever) or more"},
		{[]string{"serve", "-tls-cert", "c.pem"}, "loophttp serve: -tls-cert and -tls-key go together"},
		{[]string{"serve", "-loops", "x"}, `loophttp serve: invalid value "x" for flag -loops: parse error`},
		{[]string{"serve", "-addr", "8080"}, `loophttp serve: -addr "8080": want host:port`},
		{[]string{"serve", "-addr", ":99999"}, `loophttp serve: -addr ":99999": port "99999" is not 0..65535`},
		{[]string{"serve", "-timeout", "-1s"}, "loophttp serve: -timeout -1s: want 0 (off) or more"},
		{[]string{"get"}, "loophttp get: want one URL, got 0 arguments"},
		{[]string{"get", "http://a/", "http://b/"}, "loophttp get: want one URL, got 2 arguments"},
		{[]string{"get", "-H", "nocolon", "http://a/"}, `loophttp get: -H "nocolon": want 'Name: value'`},
		{[]string{"get", "-max-time", "-1s", "http://a/"}, "loophttp get: -max-time -1s: want 0 (no limit) or a positive duration"},
		{[]string{"get", "ftp://a/"}, `loophttp get: api: invalid request: "ftp://a/": want an http:// or https:// URL`},
		{[]string{"get", "-d", "@/nonexistent/file", "http://a/"}, "loophttp get: -d @/nonexistent/file: open /nonexistent/file: no such file or directory"},
		{[]string{"load", "-c", "0", "http://a/"}, "loophttp load: -c 0: want at least 1"},
		{[]string{"load", "-R", "-5", "http://a/"}, "loophttp load: -R -5: want 0 or more"},
		{[]string{"load", "-d", "0s", "http://a/"}, "loophttp load: -d 0s: want a positive duration"},
		{[]string{"load", "-m", "GE T", "http://a/"}, `loophttp load: -m "GE T": `},
		{[]string{"load", "ftp://a/"}, `loophttp load: URL "ftp://a/": only http:// and https:// URLs`},
		{[]string{"load", "-body", "@/nonexistent/file", "http://a/"}, "loophttp load: -body @/nonexistent/file: open /nonexistent/file"},
		{[]string{"version", "x"}, `loophttp version: unexpected argument "x"`},
	}
	for _, tt := range tests {
		out, errOut, status := runCLI(tt.args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if status != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], tt.want) || !strings.HasPrefix(lines[1], "Run 'loophttp") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want status 2 and %q with a hint", tt.args, status, out, errOut, tt.want)
		}
	}
}

func TestCLIVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out, errOut, status := runCLI(args...)
		want := "loophttp "
		if status != 0 || errOut != "" || !strings.HasPrefix(out, want) || !strings.Contains(out, " "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}
}

// TestCLIServeByDefault: with no command (flags only) loophttp serves the
// demo, and Ctrl-C stops it gracefully with status 0.
func TestCLIServeByDefault(t *testing.T) {
	for _, args := range [][]string{{"-addr", "127.0.0.1:0", "-quiet"}, {"serve", "-addr", "127.0.0.1:0", "-quiet", "-loops", "1", "-timeout", "0"}} {
		out, errOut, status := runCLI(args...)
		if status != 0 || errOut != "" || !strings.HasPrefix(out, "loophttp listening on http://127.0.0.1:") || !strings.Contains(out, "interrupt: stopping within 10s") || !strings.Contains(out, "\nstopped in ") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}
}
