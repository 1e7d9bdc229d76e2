// Package storage holds process-level tests of the storage engine against
// the real samsa binary (test/brokerproc) with franz-go: file descriptors
// with many segments (a restart under a low RLIMIT_NOFILE, through
// prlimit) and a full disk (a small tmpfs, which needs root: CI runs as
// root and must not skip; elsewhere the test skips unless
// SAMSA_REQUIRE_CLIENTS is set).
package storage
