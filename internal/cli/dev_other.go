//go:build !linux

package cli

import "syscall"

// devChildAttrs puts a dev-cluster node in its own process group, so a
// Ctrl-C in the terminal reaches only `samsa dev cluster`, which then
// stops the nodes in order. (Only Linux can also signal the nodes when
// this process dies.)
func devChildAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
