// Package childproc starts helper processes for tests (servers, proxies,
// databases) so that they die with the test binary, whatever ends it: a
// panic, a timeout or SIGKILL.
package childproc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// The kernel sends Pdeathsig when the thread that forked the child ends,
// not the process, and Go may end idle threads: every child is therefore
// forked from one goroutine locked to its thread for the binary's life.
var (
	once     sync.Once
	requests chan request
)

type request struct {
	cmd *exec.Cmd
	res chan error
}

// Start starts cmd with SIGKILL as its parent-death signal.
func Start(cmd *exec.Cmd) error {
	once.Do(func() {
		requests = make(chan request)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must live on
			for r := range requests {
				r.res <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	res := make(chan error, 1)
	requests <- request{cmd: cmd, res: res}
	return <-res
}
