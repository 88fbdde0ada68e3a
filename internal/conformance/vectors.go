// Package conformance loads the shared HTTP/1.1 conformance corpus
// (../shared/conformance/vectors.json beside the module) and runs byte
// streams through the codec the way a connection would, so that the codec,
// engine and fuzz tests judge messages with one harness.
//
// It is for tests only. Nothing here is safe for concurrent use.
package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Vector is one case of the corpus. See ../shared/conformance/README.md §2
// for the meaning of each field. Octet strings are already converted to
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

// ErrMissing reports that the corpus file is not beside the module.
var ErrMissing = errors.New("conformance corpus not found")

// Path returns where the corpus is: $LOOPHTTP_CONFORMANCE if set, else
// shared/conformance/vectors.json in the directory holding the module root.
func Path() (string, error) {
	if p := os.Getenv("LOOPHTTP_CONFORMANCE"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "codec")); err == nil {
				break // the main module, not the benchmarks module
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrMissing
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "conformance", "vectors.json")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s", ErrMissing, p)
	}
	return p, nil
}

// Load reads and decodes the corpus.
func Load() ([]Vector, error) {
	p, err := Path()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var vs []Vector
	if err := json.Unmarshal(b, &vs); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return vs, nil
}
