package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/internal/ports"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobtest"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// mainArgsEnv makes the test binary run main with these (JSON) arguments,
// so tests can run the job as its users do without building it.
const mainArgsEnv = "MQTTBEAM_TELEMETRY_MAIN_ARGS"

func TestMain(m *testing.M) {
	jobtest.RunChild(mainArgsEnv, "telemetry", main)
	ptest.MainWithDefault(m, "prism")
}

// runMain runs the job in a child process and returns its combined output
// and exit code.
func runMain(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	return jobtest.RunMain(t, mainArgsEnv, timeout, args...)
}

// parseFlags parses args as the job does, without running it.
func parseFlags(args ...string) (*config, error) {
	var cfg config
	return &cfg, jobtest.ParseFlags(cfg.register, cfg.validate, args...)
}

// Bad flags fail before anything starts, naming the flag and what it allows.
func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--qos=3"}, "--qos: 3 is not 0, 1 or 2"},
		{[]string{"--window_type=tumbling"}, `--window_type: "tumbling" is not one of fixed, sliding, session`},
		{[]string{"--window_type=sliding"}, "--window_period"},
		{[]string{"--window=-1m"}, "--window"},
		{[]string{"--window=1500us"}, "--window: 1.5ms is not a whole number of milliseconds"},
		{[]string{"--window_type=sliding", "--window_period=2500us"}, "--window_period: 2.5ms is not a whole"},
		{[]string{"--topic=devices/#/x"}, "--topic"},
		{[]string{"--broker=http://x:1"}, "--broker"},
		{[]string{"--broker=tcp://user:secret@host:1883"}, "--broker"},
		{[]string{"--output_table=nope"}, "--output_table"},
		{[]string{"--output_table=my-project:telemetry.aggs", "--output_dir=x"}, "--output_dir"},
		{[]string{"--raw_table=my-project:telemetry.raw"}, "--output_table: is required"},
		{[]string{"--registry=bq://nope"}, "--registry"},
		{[]string{"--password=x"}, "--username"},
		{[]string{"--username=u", "--password_secret=mysecret"}, "--password_secret"},
		{[]string{"--tls_cert=/no/such.pem", "--tls_key=/no/key.pem"}, "--tls_cert"},
		{[]string{"--simulate_late=2"}, "--simulate_late"},
		{[]string{"--readers=0"}, "--readers"},
		{[]string{"--payload_format=xml"}, `--payload_format: "xml" is not one of json, batch, value, sparkplug_b`},
		{[]string{"--format_route=gateways/{device_id}/telemetry"}, "--format_route: \"gateways/{device_id}/telemetry\" is not TEMPLATE=FORMAT"},
		{[]string{"--format_route=gateways/+/telemetry=batch"}, "--format_route: \"gateways/+/telemetry\" must have {device_id} exactly once"},
		{[]string{"--format_route=spBv1.0/#=protobuf"}, `--format_route: format "protobuf" is not one of`},
		{[]string{"--format_route=meters/{device_id}=value"}, "--format_route: \"meters/{device_id}\": the value format needs a level that names the metric"},
		{[]string{"--device_topic=devices/+/telemetry"}, "--device_topic"},
		{[]string{"--payload_format=sparkplug_b", "--device_topic=devices/{device_id}/telemetry"}, "--device_topic: \"devices/{device_id}/telemetry\": a sparkplug_b template"},
		{[]string{"--sparkplug_rebirth=1m"}, "--sparkplug_rebirth: needs a sparkplug_b format"},
		{[]string{"--sparkplug_device_id={group_id}/{device_id}"}, "--sparkplug_device_id"},
		{[]string{"--json_arrays=flat"}, "--json_arrays"},
		{[]string{"--batch_field="}, "--batch_field: is empty"},
		{[]string{"--simulate_profile=sparkplug"}, "--simulate_profile"},
		{[]string{"--simulate_profile=mixed", "--broker=tcp://broker:1883"}, "--simulate_profile: applies only to --broker=embedded"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	cfg, err := parseFlags()
	require.NoError(t, err, "the defaults are valid")
	assert.Equal(t, "out", cfg.OutputDir)
	assert.True(t, cfg.MQTT.IsEmbedded())
	assert.Equal(t, jobflags.List{"devices/+/telemetry"}, cfg.Topics)
}

// Without --topic, the job reads the topics of its templates.
func TestTopicsFromTheFormats(t *testing.T) {
	sparkplugFilters := jobflags.List{"spBv1.0/+/NBIRTH/+", "spBv1.0/+/NDATA/+", "spBv1.0/+/NDEATH/+",
		"spBv1.0/+/DBIRTH/+/+", "spBv1.0/+/DDATA/+/+", "spBv1.0/+/DDEATH/+/+"}
	cfg, err := parseFlags("--payload_format=sparkplug_b", "--broker=tcp://broker:1883", "--readers=2")
	require.NoError(t, err)
	assert.Equal(t, sparkplugFilters, cfg.Topics)
	assert.Equal(t, "spBv1.0/#", cfg.DeviceTopic)
	assert.Contains(t, cfg.notice, "--readers=2 with Sparkplug B")
	assert.Zero(t, cfg.SparkplugRebirth, "no rebirth requests unless asked")

	cfg, err = parseFlags("--simulate_profile=mixed")
	require.NoError(t, err)
	assert.Equal(t, append(jobflags.List{"gateways/+/telemetry", "devices/+/values/+"}, append(sparkplugFilters, "devices/+/telemetry/#")...), cfg.Topics)
	assert.Equal(t, 10*time.Second, cfg.SparkplugRebirth)

	cfg, err = parseFlags("--format_route=site/{device_id}/batch=batch", "--topic=site/#")
	require.NoError(t, err)
	assert.Equal(t, jobflags.List{"site/#"}, cfg.Topics, "--topic wins")

	// A template whose topics another's cover is not subscribed twice.
	cfg, err = parseFlags("--format_route=devices/{device_id}/telemetry/raw/{metric}=value,devices/{device_id}/telemetry/{kind}=batch,gateways/{device_id}=batch")
	require.NoError(t, err)
	assert.Equal(t, jobflags.List{"gateways/+", "devices/+/telemetry/#"}, cfg.Topics)
}

func TestFilterCovers(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a/#", "a/b/c", true}, {"a/#", "a", true}, {"a/+/c", "a/b/c", true}, {"a/+/c", "a/+/c", true},
		{"a/b/c", "a/+/c", false}, {"a/+", "a/b/c", false}, {"a/b", "a/#", false}, {"+/#", "spBv1.0/+/NDATA/+", true},
		{"a/+/#", "a", false},
	} {
		assert.Equal(t, tc.want, covers(tc.a, tc.b), "%s covers %s", tc.a, tc.b)
	}
}

// The binary exits with status 2 and names the flag, and never echoes a
// password.
func TestBadFlagExitsWithStatus2(t *testing.T) {
	out, code := runMain(t, time.Minute, "--qos=5", "--username=u", "--password=hunter2")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--qos: 5 is not 0, 1 or 2")
	assert.NotContains(t, out, "hunter2")
}

// A wrong password ends the job with one line on stderr that names the
// cause and the flags to fix, and never the password.
func TestWrongPasswordIsOneLine(t *testing.T) {
	broker := brokertest.Embedded(t, embeddedbroker.Auth("reader", "right"))
	line, _ := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, "--broker="+broker.URL(), "--username=reader",
		"--password=hunter2", "--progress_every=0s")
	assert.Regexp(t, `^telemetry: mqttio.Read: connecting to tcp://127.0.0.1:\d+ as client "mqttbeam-telemetry-0": `+
		`broker refused the connection \(not authorised: bad user name or password, or the user may not connect; check the credentials\): `+
		`not Authorized; check --username and --password \(or --password_secret\) \(details in .*mqttbeam-telemetry.log; --verbose prints them here\)$`, line)
	assert.NotContains(t, line, "hunter2")
}

// A broker that cannot be reached: the progress lines say the reader is
// not connected and why, and the run ends with status 1 and one line.
func TestUnreachableBrokerFails(t *testing.T) {
	port, err := ports.Free("127.0.0.1")
	require.NoError(t, err)
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	line, stdout := jobtest.RunMainFails(t, mainArgsEnv, 2*time.Minute, "--broker="+url, "--duration=3s", "--progress_every=500ms")
	assert.Contains(t, stdout, `| not connected: connecting to `+url+` as client "mqttbeam-telemetry-0": network: `)
	assert.Regexp(t, `^telemetry: mqttio.Read: reader mqttbeam-telemetry-0 never connected \(last error: connecting to `+url+
		` as client "mqttbeam-telemetry-0": network: .*connection refused\): check the broker URLs and that the broker is up; check --broker \(details in .*\)$`, line)
}

// The direct runner has no state or timers: a bounded run goes to prism
// with a notice instead of panicking.
func TestDirectRunnerRunsOnPrism(t *testing.T) {
	out, code := runMain(t, 2*time.Minute, "--runner=direct", "--max_records=30", "--window=1s", "--simulate_rate=20", "--progress_every=0s")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "running it on prism")
	assert.Contains(t, out, "telemetry: done in")
	assert.Contains(t, out, "30 messages in")
}

// A plain password would travel inside the job graph to Dataflow: refused.
func TestPlainPasswordRefusedOnDataflow(t *testing.T) {
	out, code := runMain(t, time.Minute, "--runner=dataflow", "--dry_run", "--project=my-project", "--region=europe-west1",
		"--staging_location=gs://my-bucket/staging", "--broker=ssl://broker.example.com:8883",
		"--username=reader", "--password=hunter2", "--output_table=my-project:telemetry.aggregates")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--password: is for local runs")
	assert.NotContains(t, out, "hunter2")
}

// On Dataflow the job translates, offline and without credentials, to a
// streaming job, also with mutual TLS (the client key from Secret Manager)
// and Sparkplug B's state and rebirth requests.
func TestDataflowDryRun(t *testing.T) {
	ruleFile, err := filepath.Abs("../../testdata/rules/rules.json")
	require.NoError(t, err)
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	out, code := runMain(t, 2*time.Minute, "--runner=dataflow", "--dry_run", "--project=my-project", "--region=europe-west1",
		"--staging_location=gs://my-bucket/staging", "--broker=ssl://broker.example.com:8883",
		"--username=reader", "--password_secret=projects/my-project/secrets/mqtt/versions/latest", "--output_table=my-project:telemetry.aggregates",
		"--raw_table=my-project:telemetry.readings", "--registry=bq://my-project:fleet.devices", "--rules="+ruleFile,
		"--tls_ca="+c.CAFile, "--tls_cert="+c.ClientCert, "--tls_key_secret=projects/my-project/secrets/mqtt-key/versions/3",
		"--format_route=spBv1.0/#=sparkplug_b,gateways/{device_id}/telemetry=batch", "--sparkplug_rebirth=1m")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "JOB_TYPE_STREAMING")
	assert.Contains(t, out, "telemetry.Parse/Sparkplug/telemetry.sparkplugFn", "the Sparkplug B state step translates")
	assert.NotContains(t, out, "JOB_TYPE_BATCH")
	assert.Contains(t, out, "projects/my-project/secrets/mqtt/versions/latest", "the workers read the secret")
	assert.Contains(t, out, "projects/my-project/secrets/mqtt-key/versions/3", "the workers read the client key")
}

// fleetMessage is one message a test publishes.
type fleetMessage struct {
	topic, payload string
}

// publisher publishes a test's messages: with paho, or with mosquitto_pub
// (the interop test).
type publisher func(t *testing.T, msgs []fleetMessage)

func pahoPublisher(url string) publisher {
	return func(t *testing.T, msgs []fleetMessage) {
		c := brokertest.Connect(t, brokertest.ClientOptions(url, "e2e-publisher"))
		for _, m := range msgs {
			brokertest.Await(t, c.Publish(m.topic, 1, false, m.payload))
		}
	}
}

// mosquittoPublisher publishes with mosquitto_pub, with the extra
// arguments (e.g. MQTT 5 properties).
func mosquittoPublisher(host, port string, extra ...string) publisher {
	return func(t *testing.T, msgs []fleetMessage) {
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), brokertest.Timeout)
			args := append([]string{"-h", host, "-p", port, "-q", "1", "-t", m.topic, "-m", m.payload}, extra...)
			out, err := exec.CommandContext(ctx, "mosquitto_pub", args...).CombinedOutput()
			cancel()
			require.NoError(t, err, "mosquitto_pub: %s", out)
		}
	}
}

// presubscribe creates the reader's persistent session, so that the broker
// keeps what is published before the job starts.
func presubscribe(t *testing.T, url, clientID string, filters ...string) {
	c := brokertest.Connect(t, brokertest.ClientOptions(url, clientID).SetCleanSession(false))
	for _, f := range filters {
		brokertest.Await(t, c.Subscribe(f, 1, nil))
	}
	c.Disconnect(0)
}

func readJSONL[T any](t *testing.T, path string) []T {
	return jobtest.ReadJSONL[T](t, path)
}

func writeFile(t *testing.T, name, content string) string {
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// The whole job on prism: three devices (one not in the registry), a hot
// device that earns a command, and two malformed messages, read from the
// broker, and every output checked row by row.
func TestEndToEnd(t *testing.T) {
	broker := brokertest.Embedded(t)
	testEndToEnd(t, broker.URL(), pahoPublisher(broker.URL()))
}

// The same job against Mosquitto, fed by mosquitto_pub.
func TestEndToEndMosquitto(t *testing.T) {
	broker := brokertest.Mosquitto(t)
	u := strings.TrimPrefix(broker.URL(), "tcp://")
	host, port, _ := strings.Cut(u, ":")
	testEndToEnd(t, broker.URL(), mosquittoPublisher(host, port))
}

// The same job at MQTT 5, fed by mosquitto_pub at MQTT 5 with a user
// property, which every reading keeps as an attribute.
func TestEndToEndMQTT5(t *testing.T) {
	broker := brokertest.Mosquitto(t)
	u := strings.TrimPrefix(broker.URL(), "tcp://")
	host, port, _ := strings.Cut(u, ":")
	testEndToEnd(t, broker.URL(), mosquittoPublisher(host, port, "-V", "mqttv5", "-D", "publish", "user-property", "fw", "1.2"), "--mqtt_version=5")
}

// testEndToEnd runs the job with flags on messages publish publishes.
func testEndToEnd(t *testing.T, url string, publish publisher, flags ...string) {
	// One window, two minutes ahead: the watermark (receive time) cannot
	// pass it before the read ends, so no reading is late.
	start := time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)
	var msgs []fleetMessage
	temps := map[string][]float64{"d1": {20, 21, 22, 23, 24}, "d2": {70, 75, 85, 80, 78}, "d3": {10, 10, 10, 10, 10}}
	for _, dev := range []string{"d1", "d2", "d3"} {
		for i, temp := range temps[dev] {
			ts := start.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
			msgs = append(msgs, fleetMessage{"devices/" + dev + "/telemetry",
				fmt.Sprintf(`{"ts":%d,"temperature":%v,"humidity":%d,"status":"ok"}`, ts, temp, 40+i)})
		}
	}
	msgs = append(msgs,
		fleetMessage{"devices/d1/telemetry", "not json"},
		fleetMessage{"devices/d2/telemetry", fmt.Sprintf(`{"ts":%d,"status":"ok"}`, start.UnixMilli())})
	noMetrics := msgs[len(msgs)-1].payload
	// d2 is still hot in the next window: the rule's 10m cooldown holds
	// the second command back.
	next := start.Add(time.Minute)
	for i, temp := range []float64{90, 91} {
		msgs = append(msgs, fleetMessage{"devices/d2/telemetry",
			fmt.Sprintf(`{"ts":%d,"temperature":%v,"humidity":%d}`, next.Add(time.Duration(i)*time.Second).UnixMilli(), temp, 50+i)})
	}

	registry := writeFile(t, "devices.csv", "device_id,site,model\nd1,berlin,x1\nd2,lyon,x2\n")
	ruleFile := writeFile(t, "rules.yaml", "rules:\n- name: overheat\n  metric: temperature\n  stat: max\n  op: '>'\n  value: 80\n  command: {action: throttle}\n  cooldown: 10m\n")
	dir := t.TempDir()

	commands := brokertest.NewInbox(10)
	sub := brokertest.Connect(t, brokertest.ClientOptions(url, "e2e-commands"))
	brokertest.Await(t, sub.Subscribe("devices/+/commands", 1, commands.Handle))
	presubscribe(t, url, "e2e-0", "devices/+/telemetry")
	publish(t, msgs)

	cfg, err := parseFlags(append([]string{"--broker=" + url, "--client_id=e2e", fmt.Sprintf("--max_records=%d", len(msgs)),
		"--output_dir=" + dir, "--registry=" + registry, "--rules=" + ruleFile, "--allowed_lateness=0s", "--progress_every=0s"}, flags...)...)
	require.NoError(t, err)
	require.NoError(t, run(context.Background(), cfg))

	// Aggregates: per device and metric, one on-time pane of the window.
	aggs := readJSONL[rows.Aggregate](t, filepath.Join(dir, rows.AggregatesTable+".jsonl"))
	got := map[string]rows.Aggregate{}
	for _, a := range aggs {
		assert.Equal(t, "on_time", a.Pane)
		if a.WindowStart.Equal(next) {
			assert.Equal(t, "d2", a.DeviceID)
			assert.Equal(t, int64(2), a.Count)
			if a.Metric == "temperature" {
				assert.Equal(t, 91.0, a.Max)
			}
			continue
		}
		key := a.DeviceID + "/" + a.Metric
		require.NotContains(t, got, key, "one pane per window")
		got[key] = a
		assert.Equal(t, start, a.WindowStart.UTC(), key)
		assert.Equal(t, start.Add(time.Minute), a.WindowEnd.UTC(), key)
		assert.Equal(t, int64(5), a.Count, key)
	}
	require.Len(t, got, 6)
	require.Len(t, aggs, 8, "six aggregates in the first window, two in the next")
	assert.Equal(t, rows.Aggregate{}.Site, got["d3/temperature"].Site)
	assert.False(t, got["d3/temperature"].KnownDevice)
	assert.True(t, got["d1/humidity"].KnownDevice)
	assert.Equal(t, "berlin", got["d1/humidity"].Site)
	assert.Equal(t, "x2", got["d2/temperature"].Model)
	d2 := got["d2/temperature"]
	assert.Equal(t, []float64{70, 85, 388, 77.6, 70, 78}, []float64{d2.Min, d2.Max, d2.Sum, d2.Mean, d2.First, d2.Last})
	assert.Equal(t, 42.0, got["d1/humidity"].Mean)

	// Readings: the seventeen good messages, with the MQTT 5 user property
	// as an attribute when there is one.
	readings := readJSONL[rows.Reading](t, filepath.Join(dir, rows.ReadingsTable+".jsonl"))
	assert.Len(t, readings, 17)
	if slices.Contains(flags, "--mqtt_version=5") {
		for _, r := range readings {
			assert.Contains(t, r.Attributes, rows.Attribute{Name: "fw", Value: "1.2"}, r.DeviceID)
		}
	}

	// Dead letters: the two bad messages, with their bytes and reasons.
	dead := readJSONL[rows.DeadLetter](t, filepath.Join(dir, rows.DeadLettersTable+".jsonl"))
	reasons := map[string]string{}
	for _, d := range dead {
		assert.Equal(t, rows.StageParse, d.Stage)
		reasons[d.Reason] = string(d.Payload)
	}
	assert.Equal(t, map[string]string{
		telemetry.ReasonNotJSON:   "not json",
		telemetry.ReasonNoMetrics: noMetrics,
	}, reasons)

	// Commands: one, to the hot device, audited and published; the next
	// window's firing is held back by the cooldown.
	audit := readJSONL[rows.Command](t, filepath.Join(dir, rows.CommandsTable+".jsonl"))
	require.Len(t, audit, 1)
	assert.Equal(t, "d2", audit[0].DeviceID)
	assert.Equal(t, "overheat", audit[0].Rule)
	assert.Equal(t, rows.CommandIssued, audit[0].Status)
	assert.Equal(t, "devices/d2/commands", audit[0].Topic)
	var m paho.Message
	select {
	case m = <-commands:
	case <-time.After(brokertest.Timeout):
		t.Fatal("no command reached the device")
	}
	assert.Equal(t, "devices/d2/commands", m.Topic())
	var payload struct {
		Rule    string          `json:"rule"`
		Value   float64         `json:"value"`
		Command json.RawMessage `json:"command"`
	}
	require.NoError(t, json.Unmarshal(m.Payload(), &payload))
	assert.Equal(t, "overheat", payload.Rule)
	assert.Equal(t, 85.0, payload.Value)
	assert.JSONEq(t, `{"action":"throttle"}`, string(payload.Command))
	assert.Empty(t, commands, "exactly one command")
}

// The demo with a short window and the mixed profile: it prints its
// progress; the aggregates have every kind of simulated device (JSON, the
// gateway's children, plain-value meters, the Sparkplug B edge node and
// its devices); an interrupt stops the readers and the registry refresh,
// fires the open windows and ends the job, leaving the outputs in ./out.
func TestInterruptDrainsTheMixedDemo(t *testing.T) {
	out := t.TempDir()
	want := append([]string{devicesim.DeviceID(0)}, devicesim.MixedDeviceIDs()...)
	aggregates := filepath.Join(out, rows.AggregatesTable+".jsonl")
	// Interrupt once every kind of device has aggregates.
	log := jobtest.Interrupt(t, mainArgsEnv, 3*time.Minute, func(line string) bool {
		if !strings.HasPrefix(line, "progress:") {
			return false
		}
		b, _ := os.ReadFile(aggregates) // not there yet, or a part of it
		for _, id := range want {
			if !strings.Contains(string(b), `"device_id":"`+id+`"`) {
				return false
			}
		}
		return true
	}, "--simulate_profile=mixed", "--window=2s", "--allowed_lateness=1s", "--simulate_rate=10", "--progress_every=250ms", "--output_dir="+out)
	assert.Contains(t, log, "telemetry: done in")
	assert.Contains(t, log, "a Sparkplug B edge node with two devices")

	metrics := map[string]map[string]bool{}
	for _, a := range readJSONL[rows.Aggregate](t, aggregates) {
		if metrics[a.DeviceID] == nil {
			metrics[a.DeviceID] = map[string]bool{}
		}
		metrics[a.DeviceID][a.Metric] = true
		if slices.Contains(want, a.DeviceID) {
			assert.True(t, a.KnownDevice, "the simulated registry has %s", a.DeviceID)
		}
	}
	for _, id := range want {
		assert.NotEmpty(t, metrics[id], id)
	}
	assert.True(t, metrics["gw-00-ble-1"]["temperature"])
	assert.True(t, metrics["meter-1"]["power"])
	assert.True(t, metrics["sim/edge-0/pump-2"]["rpm"])
	assert.True(t, metrics["sim/edge-0"]["uptime"])
	readings := readJSONL[rows.Reading](t, filepath.Join(out, rows.ReadingsTable+".jsonl"))
	assert.NotEmpty(t, readings)

	// The job started after the edge node's BIRTHs: it asked for them again.
	noBirth := 0
	for _, d := range readJSONL[rows.DeadLetter](t, filepath.Join(out, rows.DeadLettersTable+".jsonl")) {
		if d.Reason == telemetry.ReasonNoBirth {
			noBirth++
		}
	}
	rebirths := 0
	for _, c := range readJSONL[rows.Command](t, filepath.Join(out, rows.CommandsTable+".jsonl")) {
		if c.Rule == telemetry.RebirthRule {
			rebirths++
			assert.Equal(t, "sim/edge-0", c.DeviceID)
			assert.Equal(t, "spBv1.0/sim/NCMD/edge-0", c.Topic)
		}
	}
	if noBirth > 0 {
		assert.NotZero(t, rebirths, "%d DATA before their BIRTH, and no rebirth request", noBirth)
	}
}

// Every payload format through one job on prism against Mosquitto: JSON
// with a nested object, a gateway's batch for its children, plain values,
// InfluxDB line protocol from Telegraf, and Sparkplug B (an edge node's BIRTHs and DATA by alias; a second edge
// node's DATA before its BIRTH, which the job answers with a rebirth
// request published through mqttio.Write).
func TestEndToEndFormatsMosquitto(t *testing.T) {
	broker := brokertest.Mosquitto(t)
	url := broker.URL()
	start := time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)
	ms := func(d time.Duration) int64 { return start.Add(d).UnixMilli() }
	type spMetric = sparkplug.Metric
	sp := func(typ, node, device string, seq uint64, at time.Duration, metrics ...spMetric) fleetMessage {
		p := sparkplug.Payload{Timestamp: uint64(ms(at)), Seq: seq, HasSeq: true, Metrics: metrics}
		topic := sparkplug.Topic{Group: "plant-1", Type: typ, EdgeNode: node, Device: device}
		return fleetMessage{topic.String(), string(p.Marshal())}
	}
	alias := func(a uint64, v sparkplug.Value) spMetric { return spMetric{Alias: a, HasAlias: true, Value: v} }
	msgs := []fleetMessage{
		{"devices/d1/telemetry", fmt.Sprintf(`{"ts":%d,"env":{"temperature":21.5},"status":"ok"}`, ms(0))},
		{"devices/d1/telemetry", fmt.Sprintf(`{"ts":%d,"env":{"temperature":22.5},"status":"ok"}`, ms(10*time.Second))},
		{"gateways/gw-1/telemetry", fmt.Sprintf(`{"ts":%d,"battery":3.9,"readings":[{"host":"ble-1","ts":%d,"temperature":20},`+
			`{"host":"ble-2","ts":%d,"temperature":22},{"host":"bad/id","temperature":1}]}`, ms(0), ms(time.Second), ms(2*time.Second))},
		{"devices/meter-1/values/power", "1200"},
		{"devices/meter-1/values/power", "1300"},
		{"telegraf/host-1/metrics", fmt.Sprintf("cpu,cpu=cpu-total usage_idle=97.5 %d\nenv,host=ble-9 temperature=19.5 %d",
			start.UnixNano(), start.Add(time.Second).UnixNano())},
		sp(sparkplug.NBIRTH, "edge-7", "", 0, 0,
			spMetric{Name: sparkplug.BdSeqMetric, DataType: sparkplug.Int64, Value: sparkplug.LongValue(0)},
			spMetric{Name: "uptime", Alias: 2, HasAlias: true, DataType: sparkplug.UInt64, Value: sparkplug.LongValue(10)}),
		sp(sparkplug.DBIRTH, "edge-7", "pump-1", 1, 0,
			spMetric{Name: "temperature", Alias: 10, HasAlias: true, DataType: sparkplug.Double, Value: sparkplug.DoubleValue(40)}),
		sp(sparkplug.DDATA, "edge-7", "pump-1", 2, 3*time.Second, alias(10, sparkplug.DoubleValue(41))),
		sp(sparkplug.DDATA, "edge-7", "pump-1", 3, 4*time.Second, alias(10, sparkplug.DoubleValue(45))),
		sp(sparkplug.NDATA, "edge-7", "", 4, 5*time.Second, alias(2, sparkplug.LongValue(15))),
		sp(sparkplug.DDATA, "edge-9", "pump-1", 7, 5*time.Second, alias(10, sparkplug.DoubleValue(1))),
	}
	ncmd := brokertest.NewInbox(10)
	sub := brokertest.Connect(t, brokertest.ClientOptions(url, "e2e-ncmd"))
	brokertest.Await(t, sub.Subscribe("spBv1.0/+/NCMD/+", 1, ncmd.Handle))

	args := []string{"--broker=" + url, "--client_id=e2e-formats", fmt.Sprintf("--max_records=%d", len(msgs)),
		"--format_route=gateways/{device_id}/telemetry=batch,devices/{device_id}/values/{metric}=value,spBv1.0/#=sparkplug_b,telegraf/{device_id}/#=influx",
		"--device_id_field=host", // Telegraf's; batches name theirs with it too
		"--sparkplug_rebirth=1m", "--output_dir=" + t.TempDir(), "--allowed_lateness=0s", "--progress_every=0s"}
	cfg, err := parseFlags(args...)
	require.NoError(t, err)
	presubscribe(t, url, "e2e-formats-0", cfg.Topics...)
	pahoPublisher(url)(t, msgs)
	require.NoError(t, run(context.Background(), cfg))
	dir := cfg.OutputDir

	// Aggregates: every device of every format, in the window of its
	// readings.
	type key struct{ device, metric string }
	got := map[key]rows.Aggregate{}
	for _, a := range readJSONL[rows.Aggregate](t, filepath.Join(dir, rows.AggregatesTable+".jsonl")) {
		k := key{a.DeviceID, a.Metric}
		require.NotContains(t, got, k, "one pane per device and metric")
		got[k] = a
	}
	counts := map[key]int64{}
	for k, a := range got {
		counts[k] = a.Count
		if k.device != "meter-1" { // plain values are at their receive time
			assert.Equal(t, start, a.WindowStart.UTC(), k)
		}
	}
	assert.Equal(t, map[key]int64{
		{"host-1", "cpu.usage_idle"}:                      1,
		{"ble-9", "env.temperature"}:                      1,
		{"d1", "env.temperature"}:                         2,
		{"gw-1", "battery"}:                               1,
		{"ble-1", "temperature"}:                          1,
		{"ble-2", "temperature"}:                          1,
		{"meter-1", "power"}:                              2,
		{"plant-1/edge-7", "uptime"}:                      2,
		{"plant-1/edge-7", telemetry.OnlineMetric}:        1,
		{"plant-1/edge-7/pump-1", "temperature"}:          3,
		{"plant-1/edge-7/pump-1", telemetry.OnlineMetric}: 1,
	}, counts)
	pump := got[key{"plant-1/edge-7/pump-1", "temperature"}]
	assert.Equal(t, []float64{40, 45, 45}, []float64{pump.Min, pump.Max, pump.Last})
	assert.Equal(t, 1250.0, got[key{"meter-1", "power"}].Mean)

	// Dead letters: the batch element with an unsafe device id, and the
	// DATA of the edge node whose BIRTH the job never saw.
	reasons := map[string]string{}
	for _, d := range readJSONL[rows.DeadLetter](t, filepath.Join(dir, rows.DeadLettersTable+".jsonl")) {
		reasons[d.Reason] = d.Topic
	}
	assert.Equal(t, map[string]string{
		telemetry.ReasonBadDeviceID: "gateways/gw-1/telemetry",
		telemetry.ReasonNoBirth:     "spBv1.0/plant-1/DDATA/edge-9/pump-1",
	}, reasons)

	// The rebirth request: audited, and published to the edge node.
	audit := readJSONL[rows.Command](t, filepath.Join(dir, rows.CommandsTable+".jsonl"))
	require.Len(t, audit, 1)
	assert.Equal(t, rows.Command{IssuedAt: audit[0].IssuedAt, DeviceID: "plant-1/edge-9", Rule: telemetry.RebirthRule,
		Topic: "spBv1.0/plant-1/NCMD/edge-9", Payload: audit[0].Payload, Status: rows.CommandIssued}, audit[0])
	m := ncmd.Next(t, 1)[0]
	assert.Equal(t, "spBv1.0/plant-1/NCMD/edge-9", m.Topic())
	var req sparkplug.Payload
	require.NoError(t, sparkplug.Decode(m.Payload(), &req))
	require.Len(t, req.Metrics, 1)
	assert.Equal(t, sparkplug.RebirthMetric, req.Metrics[0].Name)
}
