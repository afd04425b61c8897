package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/internal/ports"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobtest"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/localenv"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/secrets/secretstest"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// mainArgsEnv makes the test binary run main with these (JSON) arguments,
// so tests can run the job as its users do without building it.
const mainArgsEnv = "MQTTBEAM_BRIDGE_MAIN_ARGS"

func TestMain(m *testing.M) {
	jobtest.RunChild(mainArgsEnv, "bridge", main)
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
	testTopic = "projects/my-project/topics/bridge"
	testSub   = "projects/my-project/subscriptions/bridge"
)

// The flags each direction needs.
var (
	toPubSubFlags = []string{"--broker=tcp://127.0.0.1:1883", "--topic=devices/+/telemetry/#", "--output_topic=" + testTopic}
	toMQTTFlags   = []string{"--direction=pubsub_to_mqtt", "--broker=tcp://127.0.0.1:1883", "--input_subscription=" + testSub}
)

// Bad flags fail before anything starts, naming the flag and what it allows.
func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		base []string
		args []string
		want string
	}{
		{nil, []string{"--broker="}, "--broker: is required"},
		{nil, []string{"--broker=tcp://h:1883", "--output_topic=" + testTopic}, "--topic: is required"},
		{nil, []string{"--broker=tcp://h:1883", "--topic=a/#", "--pubsub_endpoint=localhost:8085"}, "--output_topic: is required"},
		{toPubSubFlags, []string{"--direction=sideways"}, `--direction: "sideways" is not one of mqtt_to_pubsub, pubsub_to_mqtt`},
		{toPubSubFlags, []string{"--topic=devices/#/x"}, "--topic"},
		{toPubSubFlags, []string{"--output_topic=telemetry"}, "--output_topic"},
		{toPubSubFlags, []string{"--ordering_key=random"}, "--ordering_key"},
		{toPubSubFlags, []string{"--device_topic=devices/+/#"}, "--device_topic"},
		{toPubSubFlags, []string{"--device_topic=devices/{device_id}/#/x"}, "--device_topic"},
		{toPubSubFlags, []string{"--input_subscription=" + testSub}, "--input_subscription: applies only to --direction=pubsub_to_mqtt"},
		{toPubSubFlags, []string{"--pubsub_endpoint=localhost"}, "--pubsub_endpoint"},
		{toPubSubFlags, []string{"--readers=0"}, "--readers"},
		{toPubSubFlags, []string{"--broker=embedded"}, "--broker"},
		{toMQTTFlags[:2], []string{"--pubsub_endpoint=localhost:8085"}, "--input_subscription: is required"},
		{toMQTTFlags, []string{"--input_subscription=my-sub"}, "--input_subscription"},
		{toMQTTFlags, []string{"--mqtt_topic_template=devices/{device_id}/+"}, "--mqtt_topic_template"},
		{toMQTTFlags, []string{"--mqtt_topic_template=devices/{}/commands"}, "--mqtt_topic_template"},
		{toMQTTFlags, []string{"--mqtt_topic_template=devices/{device_id/commands"}, "--mqtt_topic_template"},
		{toMQTTFlags, []string{"--output_topic=" + testTopic}, "--output_topic: applies only to --direction=mqtt_to_pubsub"},
		{toMQTTFlags, []string{"--ordering_key=topic"}, "--ordering_key: applies only"},
		{toMQTTFlags, []string{"--dead_letter_table=nope"}, "--dead_letter_table"},
		{toMQTTFlags, []string{"--dead_letter_table=my-project:ops.dead", "--output_dir=x"}, "--output_dir"},
		{toMQTTFlags, []string{"--bigquery_endpoint=embedded"}, "--bigquery_endpoint: needs --dead_letter_table"},
	} {
		args := append(append([]string{}, tc.base...), tc.args...)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := parseFlags(args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	cfg, err := parseFlags(toPubSubFlags...)
	require.NoError(t, err, "the defaults are valid")
	assert.Equal(t, "", cfg.OutputDir, "no local files in this direction")
	cfg, err = parseFlags(toMQTTFlags...)
	require.NoError(t, err, "the defaults are valid")
	assert.Equal(t, "out", cfg.OutputDir)
}

// With no flags, a local run gets the embedded broker and Pub/Sub server
// and their default names, in both directions; Dataflow gets neither.
func TestLocalDefaults(t *testing.T) {
	cfg, err := parseFlags()
	require.NoError(t, err)
	assert.True(t, cfg.MQTT.IsEmbedded())
	assert.Equal(t, "embedded", cfg.PubSubEndpoint)
	assert.Equal(t, jobflags.List{"devices/+/telemetry/#"}, cfg.Topics)
	assert.Equal(t, localTopic, cfg.OutputTopic)
	assert.Equal(t, "out", cfg.OutputDir)
	cfg, err = parseFlags("--direction=pubsub_to_mqtt")
	require.NoError(t, err)
	assert.Equal(t, "embedded", cfg.PubSubEndpoint)
	assert.Equal(t, localSubscription, cfg.InputSubscription)
}

// With no flags but the run's length, both directions run on the embedded
// broker and Pub/Sub server and show what the other side received.
func TestRunsWithNoFlags(t *testing.T) {
	dir := t.TempDir()
	out, code := runMain(t, 2*time.Minute, "--duration=5s", "--progress_every=1s", "--output_dir="+dir)
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `progress: in \d+ msg/s \(\d+\) \| out \d+ \| dead letters 0 \| watermark`, out)
	got := jobtest.ReadJSONL[localenv.Message](t, filepath.Join(dir, pubsubFile))
	require.NotEmpty(t, got, out)
	assert.Contains(t, out, fmt.Sprintf("bridge: %d messages received by the other side", len(got)))
	for _, m := range got {
		assert.Regexp(t, `^devices/sim-\d+/telemetry$`, m.Attributes[AttrTopic])
		assert.Contains(t, m.Data, `"temperature"`)
	}

	dir = t.TempDir()
	out, code = runMain(t, 2*time.Minute, "--direction=pubsub_to_mqtt", "--duration=5s", "--output_dir="+dir)
	require.Equal(t, 0, code, out)
	sent := jobtest.ReadJSONL[localenv.MQTTMessage](t, filepath.Join(dir, mqttFile))
	require.NotEmpty(t, sent, out)
	for _, m := range sent {
		assert.Regexp(t, `^devices/sim-\d+/commands$`, m.Topic)
		assert.Contains(t, m.Payload, `"action":"blink"`)
	}
	dead := jobtest.ReadJSONL[rows.DeadLetter](t, filepath.Join(dir, rows.DeadLettersTable+".jsonl"))
	require.Len(t, dead, 1, "the backend's third message has an unsafe topic")
	assert.Equal(t, ReasonUnsafeTopic, dead[0].Reason)
}

// A wrong password ends the run with one line on stderr that names the
// cause and the flags to fix, and never the password.
func TestWrongPasswordIsOneLine(t *testing.T) {
	broker := brokertest.Embedded(t, embeddedbroker.Auth("reader", "right"))
	line, _ := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, "--broker="+broker.URL(), "--username=reader",
		"--password=hunter2", "--topic=devices/#", "--progress_every=0s")
	assert.Regexp(t, `^bridge: mqttio.Read: connecting to tcp://127.0.0.1:\d+ as client "mqttbeam-bridge-0": `+
		`broker refused the connection .*; check --username and --password \(or --password_secret\) \(details in `, line)
	assert.NotContains(t, line, "hunter2")
}

// A broker that cannot be reached ends the run with status 1 and one line.
func TestUnreachableBrokerFails(t *testing.T) {
	port, err := ports.Free("127.0.0.1")
	require.NoError(t, err)
	line, stdout := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, fmt.Sprintf("--broker=tcp://127.0.0.1:%d", port),
		"--topic=devices/#", "--duration=2s", "--progress_every=500ms")
	assert.Contains(t, stdout, "| not connected: connecting to tcp://127.0.0.1:")
	assert.Regexp(t, `^bridge: mqttio.Read: reader mqttbeam-bridge-0 never connected \(last error: .*connection refused\): .*; check --broker \(details in `, line)
}

// The binary exits with status 2 and names the flag, and never echoes a
// password.
func TestBadFlagExitsWithStatus2(t *testing.T) {
	out, code := runMain(t, time.Minute, append(toPubSubFlags, "--qos=5", "--username=u", "--password=hunter2")...)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--qos: 5 is not 0, 1 or 2")
	assert.NotContains(t, out, "hunter2")
}

// On Dataflow both directions translate, offline and without credentials,
// to streaming jobs.
func TestDataflowDryRun(t *testing.T) {
	dataflow := []string{"--runner=dataflow", "--dry_run", "--project=my-project", "--region=europe-west1",
		"--staging_location=gs://my-bucket/staging", "--broker=ssl://broker.example.com:8883",
		"--username=bridge", "--password_secret=projects/my-project/secrets/mqtt/versions/latest"}
	for name, args := range map[string][]string{
		toPubSub: {"--topic=devices/+/telemetry/#", "--output_topic=" + testTopic, "--ordering_key=device_id", "--readers=2"},
		toMQTT:   {"--direction=pubsub_to_mqtt", "--input_subscription=" + testSub, "--dead_letter_table=my-project:ops.bridge_dead_letters"},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runMain(t, 2*time.Minute, append(dataflow, args...)...)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "JOB_TYPE_STREAMING")
			assert.NotContains(t, out, "JOB_TYPE_BATCH")
		})
	}
	out, code := runMain(t, time.Minute, append(dataflow, "--direction=pubsub_to_mqtt", "--input_subscription="+testSub)...)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--dead_letter_table: is required on dataflow")
}

// MQTT -> Pub/Sub on prism: every message of two filters (one with both
// wildcards) is published once, with its topic, QoS, retained flag and the
// device id as ordering key; a message outside the filters is not.
func TestToPubSub(t *testing.T) {
	subscribed := make(chan []string, 1)
	broker := brokertest.Embedded(t, embeddedbroker.OnSubscribe(func(clientID string, filters []string) {
		if clientID == "e2e-0" {
			subscribed <- filters
		}
	}))
	ps := jobtest.PubSub(t, testTopic, testSub)
	pub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "e2e-devices"))
	// A retained message, which the broker sends the bridge when it
	// subscribes.
	brokertest.Await(t, pub.Publish("alerts/state", 1, true, "r1"))

	filters := []string{"devices/+/telemetry/#", "alerts/#"}
	cfg, err := parseFlags("--broker="+broker.URL(), "--client_id=e2e", "--topic="+strings.Join(filters, ","),
		"--output_topic="+testTopic, "--pubsub_endpoint="+ps.Addr, "--ordering_key=device_id", "--max_records=5", "--progress_every=0s")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), cfg) }()
	select {
	case got := <-subscribed:
		assert.ElementsMatch(t, filters, got)
	case err := <-done:
		t.Fatalf("the job ended before it subscribed: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the job did not subscribe within a minute")
	}
	for topic, payload := range map[string]string{"devices/d1/telemetry": "t1", "devices/d2/telemetry/temp": "t2",
		"devices/d1/telemetry/hum": "t3", "devices/d3/telemetry": "t4", "other/x": "not bridged"} {
		brokertest.Await(t, pub.Publish(topic, 1, false, payload))
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the job did not end within a minute of reading its 5 messages")
	}

	type bridged struct {
		data, key  string
		attributes map[string]string
	}
	var got []bridged
	for _, m := range ps.Messages() {
		got = append(got, bridged{string(m.Data), m.OrderingKey, m.Attributes})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].data < got[j].data })
	attrs := func(topic string) map[string]string { return map[string]string{"mqtt_topic": topic, "mqtt_qos": "1"} }
	retained := attrs("alerts/state")
	retained["mqtt_retained"] = "true"
	assert.Equal(t, []bridged{
		{"r1", "", retained},
		{"t1", "d1", attrs("devices/d1/telemetry")},
		{"t2", "d2", attrs("devices/d2/telemetry/temp")},
		{"t3", "d1", attrs("devices/d1/telemetry/hum")},
		{"t4", "d3", attrs("devices/d3/telemetry")},
	}, got)
}

// The conversion to Pub/Sub: QoS as delivered, retained only when set, and
// each ordering key.
func TestToPubSubFn(t *testing.T) {
	m := mqttio.Message{Topic: "devices/d7/telemetry", Payload: []byte("x"), QoS: 2}
	for _, tc := range []struct {
		order, template, topic, key string
	}{
		{orderNone, "devices/{device_id}/#", m.Topic, ""},
		{orderTopic, "devices/{device_id}/#", m.Topic, m.Topic},
		{orderDevice, "devices/{device_id}/#", m.Topic, "d7"},
		{orderDevice, "devices/{device_id}/#", "devices/d7", "d7"},
		{orderDevice, "+/{device_id}/telemetry", m.Topic, "d7"},
		{orderDevice, "+/{device_id}/telemetry", "devices/d7/telemetry/x", ""},
		{orderDevice, "sites/{device_id}/#", m.Topic, ""},
	} {
		fn := &toPubSubFn{OrderingKey: tc.order, DeviceTopic: tc.template}
		fn.Setup()
		in := m
		in.Topic = tc.topic
		got := fn.ProcessElement(in)
		assert.Equal(t, tc.key, got.OrderingKey, "%+v", tc)
		assert.Equal(t, map[string]string{"mqtt_topic": tc.topic, "mqtt_qos": "2"}, got.Attributes)
	}
}

// MQTT 5 properties become attributes and come back as the same
// properties: user properties under their names (escaped where a name is
// the bridge's or Pub/Sub's), the others as mqtt_ attributes.
func TestPropertiesRoundTrip(t *testing.T) {
	m := mqttio.Message{Topic: "devices/d7/telemetry", Payload: []byte("x"), QoS: 1, Properties: mqttio.Properties{
		UserProperties: mqttio.UserProperties{{Name: "site", Value: "north"}, {Name: "mqtt_topic", Value: "spoof"},
			{Name: "goog-x", Value: "g"}, {Name: "site", Value: "south"}},
		ContentType: "application/json", ResponseTopic: "devices/d7/replies", CorrelationData: []byte{0, 1, 0xff},
		MessageExpiry: 1500 * time.Millisecond}}
	fn := &toPubSubFn{OrderingKey: orderNone}
	fn.Setup()
	got := fn.ProcessElement(m)
	assert.Equal(t, map[string]string{
		"mqtt_topic": m.Topic, "mqtt_qos": "1", "site": "north", "mqtt_user_mqtt_topic": "spoof", "mqtt_user_goog-x": "g",
		"mqtt_content_type": "application/json", "mqtt_response_topic": "devices/d7/replies",
		"mqtt_correlation_data": "AAH/", "mqtt_message_expiry": "2",
	}, got.Attributes)

	p := toPublication(got)
	assert.Equal(t, "devices/d7/telemetry", p.Topic)
	assert.Equal(t, mqttio.UserProperties{{Name: "goog-x", Value: "g"}, {Name: "mqtt_topic", Value: "spoof"}, {Name: "site", Value: "north"}}, p.UserProperties)
	assert.Equal(t, "application/json", p.ContentType)
	assert.Equal(t, "devices/d7/replies", p.ResponseTopic)
	assert.Equal(t, []byte{0, 1, 0xff}, p.CorrelationData)
	assert.Equal(t, 2*time.Second, p.MessageExpiry)

	p = toPublication(pubsubio.Message{Attributes: map[string]string{"mqtt_topic": "a/b", "mqtt_correlation_data": "not base64!", "mqtt_message_expiry": "soon"}})
	assert.Equal(t, []byte("not base64!"), p.CorrelationData)
	assert.Zero(t, p.MessageExpiry)
	assert.Empty(t, p.UserProperties)
}

// Pub/Sub -> MQTT on prism, with the topic from the mqtt_topic attribute or
// from a template filled from the attributes: the safe messages are
// published once to their topic, the others are dead letters with the
// reason and never published.
func TestToMQTT(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template string
		ok       map[string]map[string]string // data -> attributes
		bad      map[string]map[string]string
		topics   map[string]string // data -> topic, of the ok ones
	}{{
		name: "attribute",
		ok: map[string]map[string]string{
			"m1": {"mqtt_topic": "devices/d1/commands"},
			"m2": {"mqtt_topic": "devices/d2/config/set", "other": "x"},
		},
		bad: map[string]map[string]string{
			"wildcard": {"mqtt_topic": "devices/+/commands"},
			"hash":     {"mqtt_topic": "devices/#"},
			"empty":    {"mqtt_topic": "devices//commands"},
			"nul":      {"mqtt_topic": "devices/d\x001/commands"},
			"missing":  {"device_id": "d1"},
		},
		topics: map[string]string{"m1": "devices/d1/commands", "m2": "devices/d2/config/set"},
	}, {
		name:     "template",
		template: "devices/{device_id}/commands",
		ok: map[string]map[string]string{
			"m1": {"device_id": "d1", "mqtt_topic": "ignored/topic"},
			"m2": {"device_id": "d2"},
		},
		bad: map[string]map[string]string{
			"slash":   {"device_id": "d1/x"},
			"plus":    {"device_id": "+"},
			"empty":   {"device_id": ""},
			"missing": {"mqtt_topic": "devices/d1/commands"},
		},
		topics: map[string]string{"m1": "devices/d1/commands", "m2": "devices/d2/commands"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			broker := brokertest.Embedded(t)
			ps := jobtest.PubSub(t, testTopic, testSub)
			inbox := brokertest.NewInbox(20)
			sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "e2e-devices"))
			brokertest.Await(t, sub.Subscribe("#", 1, inbox.Handle))
			for _, set := range []map[string]map[string]string{tc.ok, tc.bad} {
				for data, attrs := range set {
					ps.Publish(testTopic, []byte(data), attrs)
				}
			}
			dir := t.TempDir()
			args := []string{"--direction=pubsub_to_mqtt", "--broker=" + broker.URL(), "--input_subscription=" + testSub,
				"--pubsub_endpoint=" + ps.Addr, fmt.Sprintf("--max_records=%d", len(tc.ok)+len(tc.bad)),
				"--output_dir=" + dir, "--progress_every=0s"}
			if tc.template != "" {
				args = append(args, "--mqtt_topic_template="+tc.template)
			}
			cfg, err := parseFlags(args...)
			require.NoError(t, err)
			require.NoError(t, run(context.Background(), cfg))

			got := map[string]string{}
			for _, m := range inbox.Next(t, len(tc.ok)) {
				require.NotContains(t, got, string(m.Payload()), "published once")
				got[string(m.Payload())] = m.Topic()
			}
			assert.Equal(t, tc.topics, got)
			select {
			case m := <-inbox:
				t.Fatalf("unexpected message on %q: %s", m.Topic(), m.Payload())
			default:
			}

			dead := jobtest.ReadJSONL[rows.DeadLetter](t, filepath.Join(dir, rows.DeadLettersTable+".jsonl"))
			reasons := map[string]string{}
			for _, d := range dead {
				assert.Equal(t, StageBridge, d.Stage)
				assert.Equal(t, ReasonUnsafeTopic, d.Reason)
				assert.Equal(t, testSub, d.Topic)
				assert.WithinDuration(t, time.Now(), d.ReceivedAt, time.Minute)
				reasons[string(d.Payload)] = d.Detail
			}
			require.Len(t, reasons, len(tc.bad), "one dead letter per bad message: %v", reasons)
			for data := range tc.bad {
				assert.NotEmpty(t, reasons[data], data)
			}
		})
	}
}

// With --tls_key_secret the bridge reads its client key from Secret Manager
// and publishes to a broker that requires mutual TLS.
func TestToMQTTClientKeyFromSecretManager(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	key, err := os.ReadFile(c.ClientKey)
	require.NoError(t, err)
	const keySecret = "projects/my-project/secrets/bridge-key/versions/2"
	secretstest.Start(t, map[string]string{keySecret: string(key)})
	broker := brokertest.Embedded(t, embeddedbroker.TLS(c.ServerCert, c.ServerKey), embeddedbroker.ClientCA(c.CAFile))
	ps := jobtest.PubSub(t, testTopic, testSub)
	inbox := brokertest.NewInbox(20)
	sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "e2e-devices"))
	brokertest.Await(t, sub.Subscribe("#", 1, inbox.Handle))
	ps.Publish(testTopic, []byte("m1"), map[string]string{"mqtt_topic": "devices/d1/commands"})
	ps.Publish(testTopic, []byte("m2"), map[string]string{"mqtt_topic": "devices/d2/commands"})

	cfg, err := parseFlags("--direction=pubsub_to_mqtt", "--broker="+broker.TLSURL(), "--input_subscription="+testSub,
		"--pubsub_endpoint="+ps.Addr, "--max_records=2", "--output_dir="+t.TempDir(), "--progress_every=0s",
		"--tls_ca="+c.CAFile, "--tls_cert="+c.ClientCert, "--tls_key_secret="+keySecret)
	require.NoError(t, err)
	require.NoError(t, run(context.Background(), cfg))

	got := map[string]string{}
	for _, m := range inbox.Next(t, 2) {
		got[string(m.Payload())] = m.Topic()
	}
	assert.Equal(t, map[string]string{"m1": "devices/d1/commands", "m2": "devices/d2/commands"}, got)
}

// An interrupt drains a local run of the MQTT -> Pub/Sub bridge: the readers
// stop, and the job ends cleanly.
func TestInterruptDrains(t *testing.T) {
	broker := brokertest.Embedded(t)
	ps := jobtest.PubSub(t, testTopic, testSub)
	log := jobtest.Interrupt(t, mainArgsEnv, 2*time.Minute, func(line string) bool { return strings.HasPrefix(line, "progress:") },
		"--broker="+broker.URL(), "--topic=devices/#", "--output_topic="+testTopic, "--pubsub_endpoint="+ps.Addr, "--progress_every=100ms")
	assert.Contains(t, log, "bridge: stopping: reading no more messages")
	assert.Contains(t, log, "bridge: done in")
}
