// Package binary checks the samsa binary users run (SAMSA_BIN from make
// build, or one built as make build does): it is statically linked (no
// dynamic loader, no shared libraries, as DESIGN.md's "one static binary"
// promises) and its HTTP listener serves the web console, /metrics and
// /healthz that docs/console.md and docs/cli.md describe.
package binary
