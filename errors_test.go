package loophttp

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// errorKinds is engine's closed set of error kinds.
var errorKinds = []error{
	engine.ErrClosed, engine.ErrTimeout, engine.ErrInvalid, engine.ErrState,
	engine.ErrLimit, engine.ErrCanceled, engine.ErrPanic,
}

// sentinels lists every exported error value of the engine, poller and api
// packages with the kind it must wrap. TestErrorKindsCoverEverySentinel
// fails when a package defines one that is not listed here.
var sentinels = map[string]struct {
	err  error
	kind error
}{
	"engine.ErrInvalidConfig":      {engine.ErrInvalidConfig, engine.ErrInvalid},
	"engine.ErrConnClosed":         {engine.ErrConnClosed, engine.ErrClosed},
	"engine.ErrHeadersTimeout":     {engine.ErrHeadersTimeout, engine.ErrTimeout},
	"engine.ErrIdleTimeout":        {engine.ErrIdleTimeout, engine.ErrTimeout},
	"engine.ErrHandlerPanic":       {engine.ErrHandlerPanic, engine.ErrPanic},
	"engine.ErrTooMuchUnread":      {engine.ErrTooMuchUnread, engine.ErrLimit},
	"engine.ErrBodyIncomplete":     {engine.ErrBodyIncomplete, engine.ErrClosed},
	"engine.ErrStreamDone":         {engine.ErrStreamDone, engine.ErrState},
	"engine.ErrHeadSent":           {engine.ErrHeadSent, engine.ErrState},
	"engine.ErrBodyStarted":        {engine.ErrBodyStarted, engine.ErrState},
	"engine.ErrLengthMismatch":     {engine.ErrLengthMismatch, engine.ErrState},
	"engine.ErrHangUp":             {engine.ErrHangUp, engine.ErrClosed},
	"engine.ErrTruncated":          {engine.ErrTruncated, engine.ErrClosed},
	"engine.ErrAborted":            {engine.ErrAborted, engine.ErrCanceled},
	"engine.ErrBusy":               {engine.ErrBusy, engine.ErrState},
	"engine.ErrTooManyInterim":     {engine.ErrTooManyInterim, engine.ErrLimit},
	"poller.ErrConnGone":           {poller.ErrConnGone, engine.ErrClosed},
	"poller.ErrClientClosed":       {poller.ErrClientClosed, engine.ErrClosed},
	"poller.ErrServerClosed":       {poller.ErrServerClosed, engine.ErrClosed},
	"poller.ErrHandshakeTimeout":   {poller.ErrHandshakeTimeout, engine.ErrTimeout},
	"poller.ErrHandshakeEvicted":   {poller.ErrHandshakeEvicted, engine.ErrLimit},
	"poller.ErrNotTLS":             {poller.ErrNotTLS, engine.ErrInvalid},
	"api.ErrHeadersSent":           {api.ErrHeadersSent, engine.ErrState},
	"api.ErrWriteAfterEnd":         {api.ErrWriteAfterEnd, engine.ErrState},
	"api.ErrConnectionGone":        {api.ErrConnectionGone, engine.ErrClosed},
	"api.ErrContentLengthMismatch": {api.ErrContentLengthMismatch, engine.ErrState},
	"api.ErrResponseAborted":       {api.ErrResponseAborted, engine.ErrClosed},
	"api.ErrSocketDestroyed":       {api.ErrSocketDestroyed, engine.ErrClosed},
	"api.ErrDestroyed":             {api.ErrDestroyed, engine.ErrCanceled},
	"api.ErrInvalidRequest":        {api.ErrInvalidRequest, engine.ErrInvalid},
	"api.ErrListening":             {api.ErrListening, engine.ErrState},
	"api.ErrNotRunning":            {api.ErrNotRunning, engine.ErrClosed},
	"api.ErrAgentDestroyed":        {api.ErrAgentDestroyed, engine.ErrClosed},
	"api.ErrSocketHangUp":          {api.ErrSocketHangUp, engine.ErrClosed},
}

// kindNames are the kinds' own names, which are not sentinels of a kind.
var kindNames = []string{
	"engine.ErrClosed", "engine.ErrTimeout", "engine.ErrInvalid", "engine.ErrState",
	"engine.ErrLimit", "engine.ErrCanceled", "engine.ErrPanic",
}

// TestErrorKinds: each error value wraps its kind and no other, so
// errors.Is answers the same question the same way in every layer.
func TestErrorKinds(t *testing.T) {
	for name, s := range sentinels {
		for _, k := range errorKinds {
			if got, want := errors.Is(s.err, k), k == s.kind; got != want {
				t.Errorf("errors.Is(%s, %v) = %v, want %v", name, k, got, want)
			}
		}
	}
}

// TestErrorKindsCoverEverySentinel reads the sources of the three
// packages: every exported package-level Err… variable must be listed in
// sentinels, so a new error value cannot skip the closed set.
func TestErrorKindsCoverEverySentinel(t *testing.T) {
	var found []string
	for _, pkg := range []string{"engine", "poller", "api"} {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, exportedErrVars(pkg, f)...)
		}
	}
	if len(found) < len(sentinels)/2 {
		t.Fatalf("found only %d error variables in the sources: %v", len(found), found)
	}
	for _, name := range found {
		if slices.Contains(kindNames, name) {
			continue
		}
		if _, ok := sentinels[name]; !ok {
			t.Errorf("%s is not in sentinels: give it a kind (engine.NewError) and list it", name)
		}
	}
	for name := range sentinels {
		if !slices.Contains(found, name) {
			t.Errorf("%s is listed in sentinels but not defined", name)
		}
	}
}

// exportedErrVars returns "pkg.ErrX" for each exported package-level
// variable of f whose name starts with Err.
func exportedErrVars(pkg string, f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, spec := range g.Specs {
			for _, n := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
					names = append(names, pkg+"."+n.Name)
				}
			}
		}
	}
	return names
}
