package loophttp

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/loophttp/loophttp"

// layerRank orders the layers: a package may import only layers of lower
// rank (api → poller → engine → codec).
var layerRank = map[string]int{"codec": 0, "engine": 1, "poller": 2, "api": 3}

// allowedThirdParty lists, per layer, the modules outside the standard
// library it may depend on (DESIGN.md). Layers above inherit from below.
var allowedThirdParty = map[string][]string{
	"codec":  nil,
	"engine": nil,
	"poller": {"github.com/panjf2000/gnet/v2", "github.com/valyala/bytebufferpool", "golang.org/x/sys"},
}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// layerOf returns the layer of a module package ("codec", "engine", ...),
// or "" for packages outside the four layers.
func layerOf(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	if _, ok := layerRank[first]; ok {
		return first
	}
	return ""
}

// checkLayering returns every violation of the layering rules among pkgs.
func checkLayering(pkgs []listedPackage) []string {
	std := map[string]bool{}
	owner := map[string]string{} // package → module path
	for _, p := range pkgs {
		std[p.ImportPath] = p.Standard
		if p.Module != nil {
			owner[p.ImportPath] = p.Module.Path
		}
	}
	var bad []string
	for _, p := range pkgs {
		layer := layerOf(p.ImportPath)
		if layer == "" {
			continue
		}
		for _, imp := range p.Imports {
			if l := layerOf(imp); l != "" && layerRank[l] > layerRank[layer] {
				bad = append(bad, p.ImportPath+" imports "+imp+" (against api → poller → engine → codec)")
			}
			if strings.HasPrefix(imp, module+"/internal/") {
				bad = append(bad, p.ImportPath+" imports test-only "+imp)
			}
		}
		// codec and engine may depend on nothing outside the standard
		// library and the module; poller and api may import the modules
		// DESIGN.md lists (whatever those bring with them is theirs).
		deps := p.Imports
		if layerRank[layer] <= layerRank["engine"] {
			deps = p.Deps
		}
		for _, dep := range deps {
			if std[dep] || strings.HasPrefix(dep, module+"/") || dep == "C" || dep == "unsafe" {
				continue
			}
			if !thirdPartyAllowed(layer, owner[dep]) {
				bad = append(bad, p.ImportPath+" depends on "+dep+" (module "+owner[dep]+"), not allowed in "+layer)
			}
		}
		if layer != "poller" && slices.ContainsFunc(p.Imports, func(s string) bool { return strings.HasPrefix(s, "github.com/panjf2000/gnet") }) {
			bad = append(bad, p.ImportPath+" imports gnet; only poller may")
		}
	}
	return bad
}

func thirdPartyAllowed(layer, mod string) bool {
	for l, rank := range layerRank {
		if rank <= layerRank[layer] && slices.Contains(allowedThirdParty[l], mod) {
			return true
		}
	}
	return false
}

func goList(t *testing.T) []listedPackage {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-json", "./...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestLayering(t *testing.T) {
	pkgs := goList(t)
	if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == module+"/codec" }) {
		t.Fatal("go list did not report the codec package")
	}
	for _, v := range checkLayering(pkgs) {
		t.Error(v)
	}
}

// TestLayeringCatchesViolations feeds the rules packages that break them,
// so the check above cannot pass by checking nothing.
func TestLayeringCatchesViolations(t *testing.T) {
	gnet := &struct{ Path string }{"github.com/panjf2000/gnet/v2"}
	pkgs := []listedPackage{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "github.com/panjf2000/gnet/v2", Module: gnet},
		{ImportPath: module + "/codec", Imports: []string{"fmt", module + "/engine"}, Deps: []string{"fmt", module + "/engine"}},
		{ImportPath: module + "/engine", Imports: []string{"github.com/panjf2000/gnet/v2"}, Deps: []string{"github.com/panjf2000/gnet/v2"}},
		{ImportPath: module + "/api", Imports: []string{module + "/poller", module + "/internal/conformance"}, Deps: []string{"github.com/panjf2000/gnet/v2"}},
		{ImportPath: "github.com/other/lib", Module: &struct{ Path string }{"github.com/other/lib"}},
		{ImportPath: module + "/poller", Imports: []string{"github.com/other/lib", "github.com/panjf2000/gnet/v2"}},
	}
	got := strings.Join(checkLayering(pkgs), "\n")
	for _, want := range []string{
		"codec imports " + module + "/engine",
		"engine depends on github.com/panjf2000/gnet/v2",
		"engine imports gnet",
		"api imports test-only",
		"poller depends on github.com/other/lib",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violation %q not reported; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "api depends on github.com/panjf2000/gnet/v2") {
		t.Errorf("api may depend on gnet through poller; got:\n%s", got)
	}
}
