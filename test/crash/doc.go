// Package crash holds process-level fault tests of a real samsa broker:
// producers write while the broker is killed with SIGKILL, the broker is
// restarted on the same log directory, and what it serves afterwards is
// checked against what it acknowledged before dying.
//
// SAMSA_CRASH_ROUNDS sets how many kill/restart rounds run (default 2;
// make soak raises it).
package crash
