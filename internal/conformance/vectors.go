// Package conformance loads the HTTP/1.1 conformance corpus (every
// testdata/vectors*.json, embedded in the test binaries; testdata/README.md
// describes the format and the policy) and runs byte streams through the
// codec the way a connection would, so that the codec, engine and fuzz
// tests judge messages with one harness.
//
// It is for tests only. Nothing here is safe for concurrent use.
package conformance

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"
)

// Vector is one case of the corpus. See testdata/README.md for the meaning
// of each field. Octet strings are already converted to
// bytes (each code point is one octet).
type Vector struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Side     string `json:"side"` // "request" or "response"
	Raw      Octets `json:"raw"`
	Expect   string `json:"expect"` // "accept" or "reject"
	Why      string `json:"why"`

	Message // the single expected message, when Messages is 0

	Messages            int       `json:"messages"`
	Parsed              []Message `json:"parsed"`
	IgnoredTail         bool      `json:"ignored_tail"`
	ErrorStatus         int       `json:"error_status"`
	Incomplete          bool      `json:"incomplete"`
	MessagesBeforeError int       `json:"messages_before_error"`

	ThenSend        Octets          `json:"then_send"`
	InterimExpected json.RawMessage `json:"interim_expected"` // absent, null or a status

	RequestMethod  string   `json:"request_method"`
	RequestMethods []string `json:"request_methods"`
	UntilClose     bool     `json:"until_close"`
	Upgrade        bool     `json:"upgrade"`
	Tunnel         bool     `json:"tunnel"`
	Tail           *Octets  `json:"tail"`

	Limit  bool   `json:"limit"`
	Policy string `json:"policy"`
}

// Message is one expected (or observed) message. Fields a case does not
// state are nil; a stated empty list is non-nil and empty.
type Message struct {
	Method    *Octets `json:"method,omitempty"`
	Target    *Octets `json:"target,omitempty"`
	Version   *Octets `json:"version,omitempty"`
	Status    int     `json:"status,omitempty"`
	Reason    *Octets `json:"reason,omitempty"`
	Headers   []Field `json:"headers,omitempty"`
	Body      *Octets `json:"body,omitempty"`
	Trailers  []Field `json:"trailers,omitempty"`
	KeepAlive *bool   `json:"keep_alive,omitempty"`
	Interim   bool    `json:"interim,omitempty"`
}

// Field is one [name, value] pair.
type Field [2]Octets

// UnmarshalJSON decodes a two-element array of octet strings.
func (f *Field) UnmarshalJSON(b []byte) error {
	var pair []Octets
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("field: want [name, value], got %d elements", len(pair))
	}
	f[0], f[1] = pair[0], pair[1]
	return nil
}

// Octets is a byte string written in JSON as code points U+0000..U+00FF,
// one octet each (README §1).
type Octets []byte

// UnmarshalJSON converts each code point to the octet of the same value.
func (o *Octets) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return fmt.Errorf("octet string holds U+%04X", r)
		}
		out = append(out, byte(r))
	}
	*o = out
	return nil
}

// Expected returns the messages the case expects: Parsed, or the single
// message described by the case's own fields.
func (v *Vector) Expected() []Message {
	if v.Parsed != nil {
		return v.Parsed
	}
	if v.Expect == "accept" {
		return []Message{v.Message}
	}
	return nil
}

// WantsInterim reports what the case says of a 100 Continue: stated is
// false when the case says nothing, want is true for 100 and false for null.
func (v *Vector) WantsInterim() (want, stated bool) {
	if len(v.InterimExpected) == 0 {
		return false, false
	}
	return string(v.InterimExpected) != "null", true
}

// Methods returns the request methods outstanding for a response case.
func (v *Vector) Methods() []string {
	if v.RequestMethods != nil {
		return v.RequestMethods
	}
	if v.RequestMethod != "" {
		return []string{v.RequestMethod}
	}
	return []string{"GET"}
}

// corpus holds the vendored copy of the corpus files.
//
//go:embed testdata/vectors*.json
var corpus embed.FS

// Load reads and decodes every vectors*.json of the corpus, in name order:
// the copy in testdata, or, when $LOOPHTTP_CONFORMANCE names a directory,
// the vectors*.json files there instead (to judge the code by another set
// of cases written to the same policy).
func Load() ([]Vector, error) {
	if dir := os.Getenv("LOOPHTTP_CONFORMANCE"); dir != "" {
		return loadFS(os.DirFS(dir), ".", dir)
	}
	return loadFS(corpus, "testdata", "testdata")
}

// MustLoad is Load for a test: a corpus that cannot be read fails it.
func MustLoad(tb testing.TB) []Vector {
	tb.Helper()
	vs, err := Load()
	if err != nil {
		tb.Fatalf("conformance corpus: %v", err)
	}
	return vs
}

// loadFS decodes the vectors*.json files of dir in fsys; where names dir in
// messages.
func loadFS(fsys fs.FS, dir, where string) ([]Vector, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "vectors*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no vectors*.json in %s", where)
	}
	sort.Strings(names)
	var all []Vector
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var vs []Vector
		if err := json.Unmarshal(b, &vs); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(where, path.Base(name)), err)
		}
		all = append(all, vs...)
	}
	return all, nil
}
