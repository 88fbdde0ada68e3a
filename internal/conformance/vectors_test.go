package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadReadsEveryFile: Load returns the cases of every
// testdata/vectors*.json, each id once, and nothing else.
func TestLoadReadsEveryFile(t *testing.T) {
	t.Setenv("LOOPHTTP_CONFORMANCE", "")
	vs := MustLoad(t)
	files, err := filepath.Glob("testdata/vectors*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("corpus files %v, %v; want vectors.json and vectors-2.json at least", files, err)
	}
	want := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct{ ID string }
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range cases {
			if want[c.ID] {
				t.Fatalf("id %q appears twice", c.ID)
			}
			want[c.ID] = true
		}
	}
	if len(vs) != len(want) {
		t.Fatalf("Load returned %d cases; the files hold %d", len(vs), len(want))
	}
	for _, v := range vs {
		if !want[v.ID] {
			t.Fatalf("Load returned %q, which no file holds", v.ID)
		}
		delete(want, v.ID)
	}
}

// TestLoadFromDirectory: LOOPHTTP_CONFORMANCE names a directory whose
// vectors*.json are read instead; one without any is an error.
func TestLoadFromDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LOOPHTTP_CONFORMANCE", dir)
	if _, err := Load(); err == nil {
		t.Fatal("an empty directory loaded")
	}
	one := `[{"id":"x","category":"basic","side":"request","raw":"GET / HTTP/1.1\r\nHost: a\r\n\r\n","expect":"accept","why":"-"}]`
	if err := os.WriteFile(filepath.Join(dir, "vectors-9.json"), []byte(one), 0o600); err != nil {
		t.Fatal(err)
	}
	vs, err := Load()
	if err != nil || len(vs) != 1 || vs[0].ID != "x" || string(vs[0].Raw) != "GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
		t.Fatalf("Load: %v, %+v", err, vs)
	}
}
