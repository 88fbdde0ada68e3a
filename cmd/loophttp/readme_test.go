package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlocks returns the fenced blocks of the repository's README.md in
// the language lang.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```\n")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReadmeGoPrograms: the README's Go programs build as pasted, against
// this module, and its client, run against its server, prints the
// response and waits for 'close' before it exits.
func TestReadmeGoPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	blocks := readmeBlocks(t, "go")
	if len(blocks) != 2 || !strings.Contains(blocks[0], "CreateServer") || !strings.Contains(blocks[1], "api.Request(") {
		t.Fatalf("want the server and the client program in the README; got %d Go blocks", len(blocks))
	}
	// The programs use port 8080; the test gives them a free one.
	port := freePort(t)
	server := buildProgram(t, goTool, "server", strings.ReplaceAll(blocks[0], "8080", port))
	client := buildProgram(t, goTool, "client", strings.ReplaceAll(blocks[1], "8080", port))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, server)
	logs, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, err := bufio.NewReader(logs).ReadString('\n') // the Listen callback's log line
	if err != nil || !strings.Contains(line, "listening on :"+port) {
		t.Fatalf("server said %q, %v", line, err)
	}
	out, err := exec.CommandContext(ctx, client).CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	for _, want := range []string{"200 text/plain\n", "Hello, World!\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("client printed %q; want %q in it (it must wait for the events)", out, want)
		}
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// buildProgram builds src as a program of a module that uses this
// repository, offline, and returns the binary's path.
func buildProgram(t *testing.T, goTool, name, src string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod := "module readme/" + name + "\n\ngo 1.26\n\nrequire github.com/loophttp/loophttp v0.0.0\n\nreplace github.com/loophttp/loophttp => " + root + "\n"
	for file, data := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, "main.go": []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command(goTool, "build", "-mod=mod", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOPROXY=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's %s does not build: %v\n%s", name, err, out)
	}
	return bin
}

// TestReadmeCommands runs every `loophttp` command line of the README's
// shell blocks against the demo (durations cut to 300 ms), as written.
func TestReadmeCommands(t *testing.T) {
	base := startTest(t)
	dir := t.TempDir()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), readme, 0o600); err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, "sh")
	t.Chdir(dir) // commands read README.md and write out.json here
	ran := 0
	for _, block := range blocks {
		for _, line := range strings.Split(block, "\n") {
			line, _, _ = strings.Cut(line, "  #")
			args := shellWords(t, strings.TrimSpace(line))
			if len(args) < 2 || args[0] != "loophttp" {
				continue // the bare `loophttp` serves until Ctrl-C: TestCLIServeByDefault
			}
			for i := range args {
				args[i] = strings.Replace(args[i], "http://127.0.0.1:8080", base, 1)
				if args[i] == "-d" && args[1] == "load" {
					args[i+1] = "300ms"
				}
			}
			var out, errOut bytes.Buffer
			if status := run(args[1:], strings.NewReader(""), &out, &errOut, func() <-chan os.Signal { return nil }); status != 0 {
				t.Errorf("%s: status %d\n%s", line, status, errOut.String())
			}
			ran++
		}
	}
	if ran < 8 {
		t.Errorf("ran %d README command lines; the README has more", ran)
	}
}

// shellWords splits a command line at spaces, honouring single quotes.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
