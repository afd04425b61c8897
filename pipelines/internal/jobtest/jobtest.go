// Package jobtest helps test the pipelines' main packages as their users run
// them: main in a child process (the test binary re-executed with the job's
// arguments), flags parsed without running, JSON lines outputs read back and
// a Pub/Sub test server.
package jobtest

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
)

// RunChild runs main and exits when the environment variable env holds the
// job's arguments (a JSON list), as RunMain sets it; otherwise it returns.
// Call it first in TestMain.
func RunChild(env, job string, main func()) {
	args := os.Getenv(env)
	if args == "" {
		return
	}
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		panic(err)
	}
	os.Args = append([]string{job}, list...)
	main()
	os.Exit(0)
}

// RunMain runs the job in a child process (this test binary, whose TestMain
// calls RunChild with env) in a temporary directory, and returns its
// combined output and exit code. It fails the test when the job outlives
// timeout.
func RunMain(t *testing.T, env string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, t, env, args)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "the job did not end within %v:\n%s", timeout, out)
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// RunMainStreams is RunMain with the job's standard output and standard
// error apart, e.g. to check that an error is one line on standard error.
func RunMainStreams(t *testing.T, env string, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, t, env, args)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "the job did not end within %v:\n%s%s", timeout, o.String(), e.String())
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return o.String(), e.String(), 0
}

// RunMainFails runs the job as RunMainStreams does and checks that it
// fails as a user should see it: exit status 1 and exactly one line on
// standard error, which it returns with the standard output.
func RunMainFails(t *testing.T, env string, timeout time.Duration, args ...string) (line, stdout string) {
	t.Helper()
	stdout, stderr, code := RunMainStreams(t, env, timeout, args...)
	require.Equal(t, 1, code, "exit status; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "one line on stderr; got:\n%s", stderr)
	return lines[0], stdout
}

// ParseFlags parses args on a new flag set, on which register defines the
// job's flags, and validates them, as the job's main does.
func ParseFlags(register func(*flag.FlagSet), validate func() error, args ...string) error {
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return validate()
}

// ReadJSONL reads a newline-delimited JSON file of T (jsonl.ReadFile),
// failing the test when it cannot.
func ReadJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	out, err := jsonl.ReadFile[T](path)
	require.NoError(t, err)
	return out
}

// PubSub starts a pstest server with topic and a subscription to it (both
// full resource names); the test's cleanup stops it.
func PubSub(t *testing.T, topic, subscription string) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	ctx := context.Background()
	_, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
	require.NoError(t, err)
	_, err = srv.GServer.CreateSubscription(ctx, &pubsubpb.Subscription{Name: subscription, Topic: topic, AckDeadlineSeconds: 10})
	require.NoError(t, err)
	return srv
}

// Interrupt runs the job in a child process as RunMain does, sends it an
// interrupt (SIGINT) when a line of its output (standard output and error)
// satisfies ready, and returns that output once the job has exited. It fails the test when the job
// ends before it is ready, fails, or outlives timeout.
func Interrupt(t *testing.T, env string, timeout time.Duration, ready func(line string) bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, t, env, args)
	output, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	require.NoError(t, w.Close()) // the child has its copy
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = output.Close() })

	var log strings.Builder
	sc := bufio.NewScanner(output)
	interrupted := false
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if !interrupted && ready(sc.Text()) {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			interrupted = true
		}
	}
	require.NoError(t, cmd.Wait(), log.String())
	require.True(t, interrupted, "the job ended before it was ready:\n%s", log.String())
	return log.String()
}

// command is the child process that runs the job with args, in a temporary
// directory.
func command(ctx context.Context, t *testing.T, env string, args []string) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir()
	// The job's log file (jobflags.LogFile) goes to its own directory.
	cmd.Env = append(os.Environ(), env+"="+string(b), "TMPDIR="+cmd.Dir)
	return cmd
}
