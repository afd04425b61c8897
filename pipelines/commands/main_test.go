package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/internal/ports"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobtest"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/localenv"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// mainArgsEnv makes the test binary run main with these (JSON) arguments,
// so tests can run the job as its users do without building it.
const mainArgsEnv = "MQTTBEAM_COMMANDS_MAIN_ARGS"

func TestMain(m *testing.M) {
	jobtest.RunChild(mainArgsEnv, "commands", main)
	ptest.MainWithDefault(m, "prism")
}

// runMain runs the job in a child process and returns its combined output
// and exit code.
func runMain(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	return jobtest.RunMain(t, mainArgsEnv, timeout, args...)
}

// parseFlags parses args as the job does, without running it.
func parseFlags(args ...string) (*config, error) {
	var cfg config
	return &cfg, jobtest.ParseFlags(cfg.register, cfg.validate, args...)
}

const (
	testTopic = "projects/my-project/topics/device-commands"
	testSub   = "projects/my-project/subscriptions/device-commands"
)

// required are the flags a local run needs.
var required = []string{"--broker=tcp://127.0.0.1:1883", "--input_subscription=" + testSub}

// With no flags but the run's length, the job runs on the embedded broker
// and Pub/Sub server: the audit has the simulated backend's commands, sent
// and rejected, and the devices received the sent ones.
func TestRunsWithNoFlags(t *testing.T) {
	dir := t.TempDir()
	out, code := runMain(t, 2*time.Minute, "--duration=5s", "--progress_every=1s", "--output_dir="+dir)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "progress: in ")
	audit := jobtest.ReadJSONL[rows.Command](t, filepath.Join(dir, rows.CommandsTable+".jsonl"))
	sent := map[string]bool{}
	rejected := 0
	for _, a := range audit {
		switch a.Status {
		case rows.CommandSent:
			sent[a.Payload] = true
		case rows.CommandRejected:
			rejected++
			assert.True(t, strings.HasPrefix(a.Reason, ReasonUnsafeDeviceID), a.Reason)
		}
	}
	require.NotEmpty(t, sent, out)
	assert.Equal(t, 1, rejected, "the backend's third command has an unsafe device id")
	received := jobtest.ReadJSONL[localenv.MQTTMessage](t, filepath.Join(dir, mqttFile))
	require.NotEmpty(t, received, out)
	for _, m := range received {
		assert.True(t, sent[m.Payload], "received a command the audit does not show sent: %s", m.Payload)
		assert.Regexp(t, `^devices/sim-\d+/commands$`, m.Topic)
	}
}

// Bad flags fail before anything starts, naming the flag and what it allows.
func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pubsub_endpoint=localhost:8085"}, "--input_subscription: is required"},
		{[]string{"--input_subscription=" + testSub, "--broker="}, "--broker: is required"},
		{[]string{"--input_subscription=my-sub"}, "--input_subscription"},
		{[]string{"--broker=embedded"}, "--broker"},
		{[]string{"--qos=0"}, "--qos: 0 would drop commands"},
		{[]string{"--command_topic=devices/{device}/commands"}, "--command_topic"},
		{[]string{"--command_topic=devices/+/{device_id}"}, "--command_topic"},
		{[]string{"--command_topic=devices//{device_id}"}, "--command_topic"},
		{[]string{"--pubsub_endpoint=nohost"}, "--pubsub_endpoint"},
		{[]string{"--output_table=nope"}, "--output_table"},
		{[]string{"--output_table=my-project:ops.audit", "--output_dir=x"}, "--output_dir"},
		{[]string{"--dead_letter_table=my-project:ops.dead"}, "--output_table: is required"},
		{[]string{"--bigquery_endpoint=embedded"}, "--bigquery_endpoint: needs --output_table"},
		{[]string{"--readers=0"}, "--readers"},
		{[]string{"--password=x"}, "--username"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "input_subscription") && tc.want != "--input_subscription: is required" {
				args = append(append([]string{}, required...), args...)
			}
			_, err := parseFlags(args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	cfg, err := parseFlags()
	require.NoError(t, err, "a local run needs no flags")
	assert.True(t, cfg.MQTT.IsEmbedded())
	assert.Equal(t, "embedded", cfg.PubSubEndpoint)
	assert.Equal(t, localSubscription, cfg.InputSubscription)
	cfg, err = parseFlags(required...)
	require.NoError(t, err, "the defaults are valid")
	assert.Equal(t, "out", cfg.OutputDir)
	assert.Equal(t, 1, cfg.MQTT.QoS)
	cfg, err = parseFlags(append(required, "--output_table=my-project:ops.command_audit")...)
	require.NoError(t, err)
	assert.Equal(t, "my-project:ops.command_audit_dead_letters", cfg.DeadLetterTable)
}

// A wrong password ends the run with one line on stderr that names the
// cause and the flags to fix, and never the password.
func TestWrongPasswordIsOneLine(t *testing.T) {
	broker := brokertest.Embedded(t, embeddedbroker.Auth("writer", "right"))
	line, _ := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, "--broker="+broker.URL(), "--username=writer",
		"--password=hunter2", "--duration=5s", "--progress_every=0s")
	assert.Regexp(t, `^commands: mqttio.Write: connecting to tcp://127.0.0.1:\d+ as client "mqttbeam-commands-[0-9a-f]+": `+
		`broker refused the connection .*; check --username and --password \(or --password_secret\) \(details in `, line)
	assert.NotContains(t, line, "hunter2")
}

// A broker that cannot be reached ends the run with status 1 and one line
// that names the writer's connection and the flag to check.
func TestUnreachableBrokerFails(t *testing.T) {
	port, err := ports.Free("127.0.0.1")
	require.NoError(t, err)
	line, _ := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, fmt.Sprintf("--broker=tcp://127.0.0.1:%d", port),
		"--duration=5s", "--progress_every=0s")
	assert.Regexp(t, `^commands: mqttio.Write: connecting to tcp://127.0.0.1:\d+ as client "mqttbeam-commands-[0-9a-f]+": `+
		`network: .*connection refused; check --broker and that the broker is up \(details in `, line)
}

// The binary exits with status 2 and names the flag, and never echoes a
// password.
func TestBadFlagExitsWithStatus2(t *testing.T) {
	out, code := runMain(t, time.Minute, append(required, "--qos=5", "--username=u", "--password=hunter2")...)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--qos: 5 is not 0, 1 or 2")
	assert.NotContains(t, out, "hunter2")

	out, code = runMain(t, time.Minute, append(required, "--runner=direct")...)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--runner: the direct runner only runs bounded reads")
}

// On Dataflow the job translates, offline and without credentials, to a
// streaming job.
func TestDataflowDryRun(t *testing.T) {
	out, code := runMain(t, 2*time.Minute, "--runner=dataflow", "--dry_run", "--project=my-project", "--region=europe-west1",
		"--staging_location=gs://my-bucket/staging", "--broker=ssl://broker.example.com:8883",
		"--username=relay", "--password_secret=projects/my-project/secrets/mqtt/versions/latest",
		"--input_subscription="+testSub, "--output_table=my-project:ops.command_audit")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "JOB_TYPE_STREAMING")
	assert.NotContains(t, out, "JOB_TYPE_BATCH")
}

// The job on prism against pstest and the embedded broker: the valid
// commands reach their devices once, at QoS 1, and every command has exactly
// the audit row it should.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	testEndToEnd(t, []string{"--output_dir=" + dir}, func() []rows.Command {
		return jobtest.ReadJSONL[rows.Command](t, filepath.Join(dir, rows.CommandsTable+".jsonl"))
	})
}

// The same with the audit in BigQuery (the local test server, through the
// BigQuery client).
func TestEndToEndBigQuery(t *testing.T) {
	srv, err := bqtest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	testEndToEnd(t, []string{"--output_table=my-project:ops.command_audit", "--bigquery_endpoint=" + srv.RESTURL() + "," + srv.GRPCAddr()},
		func() []rows.Command {
			rs, err := srv.Rows("my-project", "ops", "command_audit")
			require.NoError(t, err)
			b, err := json.Marshal(rs)
			require.NoError(t, err)
			var audit []rows.Command
			require.NoError(t, json.Unmarshal(b, &audit), "%s", b)
			return audit
		})
}

// testEndToEnd runs the job with the output flags outputs and checks the
// devices' messages and the audit rows readAudit returns.
func testEndToEnd(t *testing.T, outputs []string, readAudit func() []rows.Command) {
	broker := brokertest.Embedded(t)
	ps := jobtest.PubSub(t, testTopic, testSub)
	inbox := brokertest.NewInbox(10)
	sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "e2e-devices"))
	brokertest.Await(t, sub.Subscribe("devices/#", 2, inbox.Handle))

	commands := []string{
		`{"device_id":"d1","command":{"action":"reboot"},"id":"c1"}`,
		`{"device_id":"d2","command":{"set":{"fan":3}}}`,
		`not json`,
		`{"command":{"action":"reboot"}}`,
		`{"device_id":"","command":{}}`,
		`{"device_id":"d9/x","command":{}}`,
		`{"device_id":"#","command":{}}`,
		`{"device_id":"d3"}`,
		`{"device_id":"d3","command":"reboot"}`,
		`{"device_id":"d3","command":{},"id":7}`,
	}
	ids := map[string]string{}
	for _, c := range commands {
		ids[c] = ps.Publish(testTopic, []byte(c), nil)
	}
	cfg, err := parseFlags(append([]string{"--broker=" + broker.URL(), "--input_subscription=" + testSub, "--pubsub_endpoint=" + ps.Addr,
		fmt.Sprintf("--max_records=%d", len(commands)), "--progress_every=0s"}, outputs...)...)
	require.NoError(t, err)
	require.NoError(t, run(context.Background(), cfg))

	// The devices: the two valid commands, once each, at QoS 1.
	got := map[string]paho.Message{}
	for _, m := range inbox.Next(t, 2) {
		got[m.Topic()] = m
		assert.Equal(t, byte(1), m.Qos(), m.Topic())
	}
	require.Contains(t, got, "devices/d1/commands")
	require.Contains(t, got, "devices/d2/commands")
	assert.JSONEq(t, `{"id":"c1","device_id":"d1","command":{"action":"reboot"}}`, string(got["devices/d1/commands"].Payload()))
	d2 := fmt.Sprintf(`{"id":%q,"device_id":"d2","command":{"set":{"fan":3}}}`, ids[commands[1]])
	assert.JSONEq(t, d2, string(got["devices/d2/commands"].Payload()))
	select {
	case m := <-inbox:
		t.Fatalf("unexpected message on %s: %s", m.Topic(), m.Payload())
	default:
	}

	// The audit: one row per command.
	audit := readAudit()
	type row struct{ device, status, topic, reason string }
	byPayload := map[string]row{}
	for _, r := range audit {
		assert.Equal(t, testSub, r.Rule)
		assert.WithinDuration(t, time.Now(), r.IssuedAt, time.Minute)
		reason, _, _ := strings.Cut(r.Reason, ":")
		key := r.Payload
		if r.Status == rows.CommandSent {
			key = r.Topic
		}
		require.NotContains(t, byPayload, key, "one row per command")
		byPayload[key] = row{r.DeviceID, r.Status, r.Topic, reason}
	}
	assert.Equal(t, map[string]row{
		"devices/d1/commands": {"d1", rows.CommandSent, "devices/d1/commands", ""},
		"devices/d2/commands": {"d2", rows.CommandSent, "devices/d2/commands", ""},
		commands[2]:           {"", rows.CommandRejected, "", ReasonNotJSON},
		commands[3]:           {"", rows.CommandRejected, "", ReasonNoDeviceID},
		commands[4]:           {"", rows.CommandRejected, "", ReasonNoDeviceID},
		commands[5]:           {"d9/x", rows.CommandRejected, "", ReasonUnsafeDeviceID},
		commands[6]:           {"#", rows.CommandRejected, "", ReasonUnsafeDeviceID},
		commands[7]:           {"d3", rows.CommandRejected, "", ReasonNoCommand},
		commands[8]:           {"d3", rows.CommandRejected, "", ReasonNoCommand},
		commands[9]:           {"d3", rows.CommandRejected, "", ReasonBadID},
	}, byPayload)
	for _, r := range audit {
		if r.Status == rows.CommandSent {
			assert.Equal(t, string(got[r.Topic].Payload()), r.Payload, "the audit holds what was published")
		}
	}

	// Every command was acknowledged to Pub/Sub.
	for _, c := range commands {
		assert.Positive(t, ps.Message(ids[c]).Acks, c)
	}
}

// An interrupt drains a local run of the streaming job: the reader stops
// taking messages, what it read is finished and the job ends with status 0.
func TestInterruptDrains(t *testing.T) {
	broker := brokertest.Embedded(t)
	ps := jobtest.PubSub(t, testTopic, testSub)
	// Interrupt once the job reports progress: it is running.
	log := jobtest.Interrupt(t, mainArgsEnv, 2*time.Minute, func(line string) bool { return strings.HasPrefix(line, "progress:") },
		"--broker="+broker.URL(), "--input_subscription="+testSub, "--pubsub_endpoint="+ps.Addr, "--progress_every=100ms")
	assert.Contains(t, log, "commands: stopping: reading no more messages")
	assert.Contains(t, log, "commands: done in")
}

// The deprecated direct runner runs a bounded read to its end.
func TestDirectRunnerBoundedRead(t *testing.T) {
	broker := brokertest.Embedded(t)
	ps := jobtest.PubSub(t, testTopic, testSub)
	inbox := brokertest.NewInbox(10)
	sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "e2e-devices"))
	brokertest.Await(t, sub.Subscribe("devices/+/commands", 1, inbox.Handle))
	ps.Publish(testTopic, []byte(`{"device_id":"d1","command":{"action":"reboot"},"id":"c1"}`), nil)
	ps.Publish(testTopic, []byte(`{"device_id":"d1/x","command":{}}`), nil)
	dir := t.TempDir()
	out, code := runMain(t, 2*time.Minute, "--runner=direct", "--broker="+broker.URL(), "--input_subscription="+testSub,
		"--pubsub_endpoint="+ps.Addr, "--max_records=2", "--output_dir="+dir)
	require.Equal(t, 0, code, out)
	m := inbox.Next(t, 1)[0]
	assert.Equal(t, "devices/d1/commands", m.Topic())
	audit := jobtest.ReadJSONL[rows.Command](t, filepath.Join(dir, rows.CommandsTable+".jsonl"))
	statuses := map[string]string{}
	for _, r := range audit {
		statuses[r.DeviceID] = r.Status
	}
	assert.Equal(t, map[string]string{"d1": rows.CommandSent, "d1/x": rows.CommandRejected}, statuses)
}

// A command may ask for an answer: the response topic and correlation data
// of the publication (MQTT 5), the correlation data defaulting to the id.
func TestCommandResponseTopic(t *testing.T) {
	fn := &validateFn{Topic: "devices/{device_id}/commands"}
	p, _, err := fn.publication(pubsubio.Message{ID: "m-1", Data: []byte(`{"device_id":"d1","command":{"a":1},"response_topic":"backend/replies/d1"}`)})
	require.NoError(t, err)
	require.Equal(t, "backend/replies/d1", p.ResponseTopic)
	require.Equal(t, []byte("m-1"), p.CorrelationData)

	p, _, err = fn.publication(pubsubio.Message{ID: "m-2", Data: []byte(`{"device_id":"d1","command":{},"id":"c-9","response_topic":"r/x","correlation_data":"req-42"}`)})
	require.NoError(t, err)
	require.Equal(t, []byte("req-42"), p.CorrelationData)

	p, _, err = fn.publication(pubsubio.Message{ID: "m-3", Data: []byte(`{"device_id":"d1","command":{}}`)})
	require.NoError(t, err)
	require.Empty(t, p.ResponseTopic)
	require.Nil(t, p.CorrelationData)

	for data, want := range map[string]string{
		`{"device_id":"d1","command":{},"response_topic":"replies/+"}`: "bad_response: response_topic: ",
		`{"device_id":"d1","command":{},"response_topic":7}`:           "bad_response: response_topic is not a string",
		`{"device_id":"d1","command":{},"correlation_data":{"x":1}}`:   "bad_response: correlation_data is not a string",
	} {
		_, _, err := fn.publication(pubsubio.Message{ID: "m", Data: []byte(data)})
		require.ErrorContains(t, err, want, data)
	}
}
