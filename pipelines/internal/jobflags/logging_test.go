package jobflags

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A failed run's line is the last cause of Beam's chain, without the plan
// and the DoFn line, with the flags to check and where the rest is.
func TestErrorLine(t *testing.T) {
	beam := errors.New("job job-001 failed:\nwhile executing Process for Plan[stage-002]:\n1: DataSource[...] Out:26\n26: SDF[mqttio.readFn]\n" +
		"\tcaused by:\nsource failed processing data\n\tcaused by:\nDoFn[UID:26, Name: mqttio.readFn] failed:\n" +
		"mqttio.Read: reader job-0 never connected (last error: connecting to tcp://h:1 as client \"job-0\": network: connection refused): check the broker URLs and that the broker is up")
	line := errorLine("bridge", &runError{beam}, "/tmp/mqttbeam-bridge.log")
	assert.Equal(t, `bridge: mqttio.Read: reader job-0 never connected (last error: connecting to tcp://h:1 as client "job-0": network: connection refused): `+
		`check the broker URLs and that the broker is up; check --broker (details in /tmp/mqttbeam-bridge.log; --verbose prints them here)`, line)

	// Errors before the run are one line as they are, without a log.
	assert.Equal(t, "bridge: --output_dir: mkdir x: permission denied", errorLine("bridge", errors.New("--output_dir: mkdir x:\npermission denied"), "/tmp/x.log"))

	// A panic's stack stays in the log.
	panicked := &runError{errors.New("failed:\n\tcaused by:\npanic: boom\ngoroutine 1 [running]:\nmain.f()")}
	assert.Equal(t, "bridge: panic: boom", errorLine("bridge", panicked, ""))
	assert.False(t, strings.Contains(errorLine("bridge", panicked, ""), "\n"))
}
