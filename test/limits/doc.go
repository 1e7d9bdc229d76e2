// Package limits holds process-level tests of the broker's resource
// limits against the built binary (test/brokerproc): a listener that runs
// out of file descriptors keeps accepting once descriptors are free, and
// clients that declare huge request frames and stall neither exhaust the
// broker's memory nor stop it serving healthy clients.
//
// The tests lower the broker's RLIMIT_NOFILE with prlimit(2) after it
// started, which any user may do to its own processes, and read its
// resident memory from /proc/PID/status; they need Linux, not root.
package limits
