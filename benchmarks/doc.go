// Package benchmarks holds the benchmarks that compare the loophttp codec
// with other Go HTTP/1.1 parsers.
//
// It is a Go module of its own, so that the peer libraries it measures
// against (such as github.com/valyala/fasthttp) are required here and never
// enter the main module's go.mod. The main module is used through a replace
// directive that points at the parent directory, so the benchmarks always
// measure the codec in the same working tree.
//
// The package has no code outside its tests. BenchmarkParse parses the same
// request heads with loophttp's codec, fasthttp and net/http, one
// sub-benchmark per input and parser, named "<input>/<parser>". The tests
// check that the inputs are byte-exact and that every parser accepts every
// input and finds the same Cookie value, so a benchmark never measures a
// failing parse.
//
// Run the benchmarks from this directory with:
//
//	go test -run '^$' -bench BenchmarkParse -benchmem -count 6 .
//
// A plain "go test ./..." runs only the quick correctness tests. README.md
// in this directory records the figures measured on one machine.
package benchmarks
