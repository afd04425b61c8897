package brokertest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/ports"
)

// daemon runs one external server process at a time from a fixed command
// line, keeps its output in logs and waits until it accepts connections. The
// process runs in its own process group, so that stopping it also stops the
// helpers it started (Erlang's port programs, shell wrappers).
type daemon struct {
	name  string        // in errors, such as "mosquitto" or "rabbitmq node rabbit-1"
	argv  []string      // the command line
	env   []string      // the environment; nil inherits this process's
	dir   string        // the working directory; "" is this process's
	addrs []string      // listener addresses ("host:port") probed for readiness
	ready time.Duration // how long start waits for the addresses
	grace time.Duration // how long stop waits after SIGTERM; 0 is stopTimeout
	logs  *logBuffer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of a daemon's command.
type process struct {
	name   string
	grace  time.Duration
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result, set before exited is closed
}

// start runs the command and waits until every address accepts connections,
// at most d.ready. On failure the process is gone when start returns.
func (d *daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		return fmt.Errorf("%s is already running", d.name)
	}
	cmd := exec.Command(d.argv[0], d.argv[1:]...)
	cmd.Env, cmd.Dir = d.env, d.dir
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	// Pdeathsig: a test binary killed by its timeout takes the server with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", d.argv[0], err)
	}
	p := &process{name: d.name, grace: cmp.Or(d.grace, stopTimeout), cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	alive, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case <-p.exited:
			cancel(fmt.Errorf("%s exited: %w", d.name, p.err))
		case <-alive.Done():
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(alive, d.ready)
	defer cancelTimeout()
	if err := ports.WaitAccepting(ctx, d.addrs...); err != nil {
		return errors.Join(err, p.stop())
	}
	d.proc = p
	return nil
}

// running reports whether the daemon's process is running.
func (d *daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return false
	}
	select {
	case <-d.proc.exited:
		return false
	default:
		return true
	}
}

// take detaches the running process, or returns nil when there is none.
func (d *daemon) take() *process {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.proc
	d.proc = nil
	return p
}

// stop stops the process (see process.stop); stopping a stopped daemon does
// nothing.
func (d *daemon) stop() error {
	if p := d.take(); p != nil {
		return p.stop()
	}
	return nil
}

// kill ends the process group with SIGKILL, as a crash or an out-of-memory
// kill would, and waits for the process to exit.
func (d *daemon) kill() error {
	p := d.take()
	if p == nil {
		return fmt.Errorf("%s is not running", d.name)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.exited
	return nil
}

// signal sends sig to the process group.
func (p *process) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// stop terminates the process group with SIGTERM, or SIGKILL after its
// grace period, and waits for the process to exit.
func (p *process) stop() error {
	select {
	case <-p.exited:
		_ = p.signal(syscall.SIGKILL) // helpers it may have left behind
		return fmt.Errorf("%s had exited on its own: %v", p.name, p.err)
	default:
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(p.grace)
	defer timer.Stop()
	select {
	case <-p.exited:
		_ = p.signal(syscall.SIGKILL)
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil // a server without a handler for SIGTERM, such as epmd
		}
		if p.err != nil {
			return fmt.Errorf("%s exit after SIGTERM: %w", p.name, p.err)
		}
		return nil
	case <-timer.C:
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.exited
	return fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.name, p.grace)
}

// logBuffer collects a server's output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the log.
func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// mark appends a line that separates the runs of a server in the log.
func (l *logBuffer) mark(event string) {
	fmt.Fprintf(l, "----- brokertest: %s -----\n", event)
}

// String returns everything logged so far.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lookBin finds an executable on PATH or, failing that, at the given
// absolute paths (Debian installs servers in /usr/sbin, which is not on every
// user's PATH). It returns "" when there is none.
func lookBin(name string, alternatives ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, a := range alternatives {
		if p, err := exec.LookPath(a); err == nil {
			return p
		}
	}
	return ""
}

// writeFile writes a generated file, naming it in the error.
func writeFile(path, content string, perm os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
