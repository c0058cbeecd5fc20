package runner

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// startNiced starts cmd at niceness nice (when it is above the server's).
//
// Linux keeps a niceness per thread, and a child starts with the one of
// the thread that forked it. So cmd is started from a thread of its own,
// niced first: the command and everything it starts run niced from their
// first instruction, with no moment at the server's priority, and no
// other thread of the server changes. The thread is not given back: a
// goroutine that ends while locked to its thread takes the thread along.
func startNiced(cmd *exec.Cmd, nice int) error {
	if nice <= 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the niced thread ends with this goroutine
		tid := syscall.Gettid()
		// The raw getpriority answers 20 - niceness.
		prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			errc <- fmt.Errorf("reading the server's niceness: %w", err)
			return
		}
		if current := 20 - prio; current < nice {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
				errc <- fmt.Errorf("lowering the step's CPU priority to niceness %d: %w", nice, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}
