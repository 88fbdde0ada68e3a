// Package loophttp is the root of the loophttp module: the IoT.js http
// module (a Node.js-style HTTP server and client) rebuilt in Go for
// high-throughput Linux edge servers.
//
// The module is layered, and dependencies point one way only:
//
//	api → poller → engine → codec
//
// codec is the strict, zero-allocation HTTP/1.1 wire format (standard library
// only); engine holds sans-I/O connection state machines; poller is the only
// package that imports gnet; api is the Node.js facade. layering_test.go in
// this directory enforces the direction with go list. See README.md.
package loophttp
