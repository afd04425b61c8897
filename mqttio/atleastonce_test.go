package mqttio

import (
	"bufio"
	"context"
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
)

// The at-least-once test runs the reading pipeline in a child process (this
// test binary, re-executed with childEnv set) so that it can be killed
// abruptly, as a crashed worker would be.
const childEnv = "MQTTIO_TEST_CHILD"

func init() { register.DoFn2x1[context.Context, Message, error](&appendFileFn{}) }

// appendFileFn appends each payload as a line to a file: the side effect of a
// pipeline step that must have happened for every message the broker forgets.
type appendFileFn struct {
	Path string
	f    *os.File
}

func (fn *appendFileFn) Setup() error {
	f, err := os.OpenFile(fn.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	fn.f = f
	return err
}

func (fn *appendFileFn) ProcessElement(_ context.Context, m Message) error {
	_, err := fn.f.Write(append(m.Payload, '\n'))
	return err
}

func (fn *appendFileFn) Teardown() error { return fn.f.Close() }

// runChild runs the reading pipeline configured by the environment until it
// is killed.
func runChild() int {
	env := strings.Split(os.Getenv(childEnv), "|") // broker|clientID|filter|output|window|version
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	var window, version int
	fmt.Sscan(env[4], &window)
	fmt.Sscan(env[5], &version)
	opts := []ReadOption{ClientID(env[1]), ProtocolVersion(version)}
	if window > 0 {
		opts = append(opts, InflightWindow(window))
	}
	msgs := Read(s, []string{env[0]}, []string{env[2]}, opts...)
	beam.ParDo0(s, &appendFileFn{Path: env[3]}, msgs)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		fmt.Fprintln(os.Stderr, "child pipeline:", err)
		return 1
	}
	return 0
}

// child is a reading pipeline running in a child process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended
}

// startChild starts a reading pipeline in a child process; the test kills it.
func startChild(t *testing.T, broker, clientID, filter, output string, window, version int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%s|%d|%d", childEnv, broker, clientID, filter, output, window, version))
	cmd.Stderr = &prefixWriter{t: t}
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.kill)
	return c
}

// kill ends the child abruptly, as a crashed worker ends.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if os.Getenv("MQTTIO_TEST_VERBOSE") != "" || strings.Contains(line, "level=ERROR") || strings.Contains(line, "child pipeline") || strings.Contains(line, "panic") {
			w.t.Log("child:", line)
		}
	}
	return len(b), nil
}

// lines returns the distinct lines of the file and how many lines it has.
func lines(t *testing.T, path string) (distinct map[string]bool, total int) {
	t.Helper()
	distinct = map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return distinct, 0
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			distinct[line] = true
			total++
		}
	}
	return distinct, total
}

// waitForLines polls the output file until it has at least n distinct lines.
func waitForLines(t *testing.T, c *child, path string, n int) map[string]bool {
	t.Helper()
	deadline := time.After(2 * testTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, _ := lines(t, path)
		if len(got) >= n {
			return got
		}
		select {
		case <-tick.C:
		case <-c.exited:
			require.FailNowf(t, "reader died", "the child pipeline exited with %v after %d of %d messages", c.cmd.ProcessState, len(got), n)
		case <-deadline:
			var missing []string
			for _, want := range expected("m", n) {
				if !got[want] {
					missing = append(missing, want)
				}
			}
			require.FailNowf(t, "timed out", "waiting for %d distinct messages, have %d; missing %v", n, len(got), missing[:min(len(missing), 20)])
		}
	}
}

// The at-least-once tests run against Mosquitto (interop_test.go), not the
// embedded mochi broker: mochi v2.7.9 occasionally loses a QoS 1 message that
// is in flight to a subscriber whose connection dies (1 of 3000 in 1 of 3
// runs here), which no client can make up for.

// killAndRestart is the at-least-once check: a publisher sends QoS 1
// messages while a reader consumes them, the reader (MQTT version, inflight
// window: 0 for the default) is killed with SIGKILL mid-stream (the
// publisher goes on; the broker keeps the messages for the reader's
// session), restarted with the same client id, and every message must have
// reached the pipeline's side effect at least once.
func killAndRestart(t *testing.T, url string, version, window int) {
	const total = 3000
	id := fmt.Sprintf("%s-v%d", safeID(t), version)
	out := t.TempDir() + "/out.txt"
	filter := "alo/+/data"

	primeSession(t, url, id+"-0", filter, 1)
	pub := newClient(t, url, id+"-pub", true)
	first := startChild(t, url, id, filter, out, window, version)

	published := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < total && err == nil; i++ {
			tok := pub.Publish(fmt.Sprintf("alo/d%d/data", i%7), 1, false, fmt.Sprintf("m-%d", i))
			if !tok.WaitTimeout(testTimeout) {
				err = fmt.Errorf("publish %d timed out", i)
			} else {
				err = tok.Error()
			}
		}
		published <- err
	}()
	waitForLines(t, first, out, total/6)
	first.kill()
	killedAt, _ := lines(t, out)
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(2 * testTimeout):
		require.FailNow(t, "publishing timed out")
	}

	second := startChild(t, url, id, filter, out, window, version)
	got := waitForLines(t, second, out, total)
	for _, want := range expected("m", total) {
		require.True(t, got[want], "message %s was lost", want)
	}
	_, lineCount := lines(t, out)
	t.Logf("%d messages: the first reader had written %d when it was killed; %d lines in all (%d redelivered)",
		total, len(killedAt), lineCount, lineCount-total)
}
