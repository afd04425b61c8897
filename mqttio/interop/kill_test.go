package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

// childEnv holds, in a child process (this test binary run again), the
// childSpec of the reading pipeline it runs until it is killed.
const childEnv = "MQTTBEAM_INTEROP_CHILD"

// childSpec configures the child's read.
type childSpec struct {
	URL, ClientID, Filter, User, Password string
	Window                                int    // InflightWindow (MQTT 3.1.1 only)
	Version                               int    // mqttio's ProtocolVersion
	Out                                   string // the file the payloads are appended to
}

func init() { register.DoFn2x1[context.Context, mqttio.Message, error](&appendFn{}) }

// appendFn appends each payload as a line to a file: the side effect that
// must happen for every message, whatever the broker redelivers.
type appendFn struct {
	Path string
	f    *os.File
}

func (fn *appendFn) Setup() (err error) {
	fn.f, err = os.OpenFile(fn.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	return err
}

func (fn *appendFn) ProcessElement(_ context.Context, m mqttio.Message) error {
	_, err := fn.f.Write(append(m.Payload, '\n'))
	return err
}

func (fn *appendFn) Teardown() error { return fn.f.Close() }

// runChild runs the child's reading pipeline; it returns only on failure.
func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	opts := []mqttio.ReadOption{mqttio.ClientID(spec.ClientID), mqttio.Credentials(spec.User, spec.Password),
		mqttio.ProtocolVersion(spec.Version)}
	if spec.Window > 0 {
		opts = append(opts, mqttio.InflightWindow(spec.Window))
	}
	msgs := mqttio.Read(s, []string{spec.URL}, []string{spec.Filter}, opts...)
	beam.ParDo0(s, &appendFn{Path: spec.Out}, msgs)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		fmt.Fprintln(os.Stderr, "child pipeline:", err)
	}
	return 1
}

// child is a reading pipeline in a child process.
type child struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	exited chan struct{}
}

// startChild starts a child running spec; the test's cleanup kills it.
func startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	env, err := json.Marshal(spec)
	require.NoError(t, err)
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(env))
	c.cmd.Stderr = &c.stderr
	require.NoError(t, c.cmd.Start())
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child stderr:\n%s", c.stderr.String())
		}
	})
	return c
}

// kill ends the child with SIGKILL, as a crashed worker ends.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// lines returns the distinct lines of path and how many lines it has.
func lines(t *testing.T, path string) (map[string]bool, int) {
	t.Helper()
	seen := map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return seen, 0
	}
	require.NoError(t, err)
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			seen[line] = true
			total++
		}
	}
	return seen, total
}

// awaitLines waits until path has n distinct lines while c runs.
func awaitLines(t *testing.T, c *child, path string, n int) {
	t.Helper()
	deadline := time.After(2 * timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		seen, _ := lines(t, path)
		if len(seen) >= n {
			return
		}
		select {
		case <-tick.C:
		case <-c.exited:
			require.FailNowf(t, "reader died", "after %d of %d messages: %s", len(seen), n, c.stderr.String())
		case <-deadline:
			require.FailNowf(t, "timed out", "waiting for %d distinct messages, have %d", n, len(seen))
		}
	}
}

// TestPersistentSessionAfterKill is the at-least-once check: a reader in a
// child process is killed with SIGKILL while messages are published at QoS
// 1, and a new reader with the same client id must get every message the
// first did not (redeliveries allowed).
func TestPersistentSessionAfterKill(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		if !tg.redelivers {
			t.Skipf("not checked on %s: %s", tg.name, tg.lossNote)
		}
		// Each window of messages costs the reader a checkpoint: fewer
		// messages where the broker's window is small (ejabberd's is 1).
		total := min(1000, 40*tg.window())
		top := root(t)
		spec := childSpec{URL: tg.url, ClientID: id(t, ""), Filter: top + "/+/data", User: tg.user, Password: tg.password,
			Version: tg.version(), Out: t.TempDir() + "/out.txt"}
		if tg.proto != 5 {
			spec.Window = tg.window() // MQTT 5 readers take the broker's from its CONNACK
		}
		prime(t, tg, spec.ClientID+"-0", spec.Filter)
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		first := startChild(t, spec)

		published := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < total && err == nil; i++ {
				tok := pub.Publish(fmt.Sprintf("%s/d%d/data", top, i%7), 1, false, fmt.Sprintf("m-%d", i))
				if !tok.WaitTimeout(timeout) {
					err = fmt.Errorf("publish %d timed out", i)
				} else {
					err = tok.Error()
				}
			}
			published <- err
		}()
		awaitLines(t, first, spec.Out, total/4)
		first.kill()
		atKill, _ := lines(t, spec.Out)
		select {
		case err := <-published:
			require.NoError(t, err)
		case <-time.After(2 * timeout):
			require.FailNow(t, "publishing timed out")
		}

		second := startChild(t, spec)
		awaitLines(t, second, spec.Out, total)
		seen, n := lines(t, spec.Out)
		for i := range total {
			require.True(t, seen[fmt.Sprintf("m-%d", i)], "m-%d was lost", i)
		}
		t.Logf("%s: %d messages; the first reader had %d when killed; %d lines (%d redelivered)", tg.name, total, len(atKill), n, n-total)
	})
}
