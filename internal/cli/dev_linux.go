package cli

import "syscall"

// devChildAttrs puts a dev-cluster node in its own process group, so a
// Ctrl-C in the terminal reaches only `samsa dev cluster`, which then
// stops the nodes in order; and asks Linux to SIGTERM the node if this
// process dies without stopping it (Pdeathsig), so no node is orphaned.
func devChildAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
