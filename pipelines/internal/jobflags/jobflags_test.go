package jobflags

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

func TestListReplacesDefaultThenAppends(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var l List
	ListVar(fs, &l, "topic", []string{"a/+"}, "")
	assert.Equal(t, List{"a/+"}, l)
	require.NoError(t, fs.Parse([]string{"--topic=b/#, c/x", "--topic=d"}))
	assert.Equal(t, List{"b/#", "c/x", "d"}, l)
}

func TestTable(t *testing.T) {
	for _, ok := range []string{"", "my-project:telemetry.aggregates", "example.com:my-project:ds_1.t-2"} {
		assert.NoError(t, Table("output_table", ok), ok)
	}
	for _, bad := range []string{"my-project.telemetry.aggregates", "p:ds.t", "My-Project:ds.t", "my-project:ds", "my-project:d s.t"} {
		err := Table("output_table", bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--output_table")
	}
}

func TestValidateRunner(t *testing.T) {
	assert.NoError(t, ValidateRunner(Prism, false))
	assert.NoError(t, ValidateRunner(Dataflow, false))
	assert.NoError(t, ValidateRunner(Direct, true))
	assert.ErrorContains(t, ValidateRunner(Direct, false), "--runner: the direct runner only runs bounded reads")
	assert.ErrorContains(t, ValidateRunner("flink", false), `--runner: "flink" is not one of prism, direct, dataflow`)
}

func TestMQTTValidate(t *testing.T) {
	parse := func(allowEmbedded bool, args ...string) *MQTT {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var m MQTT
		m.Register(fs, "job", allowEmbedded)
		require.NoError(t, fs.Parse(args))
		return &m
	}
	assert.NoError(t, parse(true).Validate(true))
	assert.ErrorContains(t, parse(true).Validate(false), "--broker: embedded runs only on local runners")
	assert.ErrorContains(t, parse(false).Validate(true), "--broker: is required")
	assert.ErrorContains(t, parse(false, "--broker=tcp://h:1883", "--qos=3").Validate(true), "--qos: 3 is not 0, 1 or 2")
	err := parse(false, "--broker=tcp://h:1883", "--username=u", "--password=pw").Validate(false)
	assert.ErrorContains(t, err, "--password: is for local runs")
	assert.NotContains(t, err.Error(), "pw\"")
	assert.NoError(t, parse(false, "--broker=ssl://h:8883", "--username=u", "--password_secret=projects/p/secrets/s/versions/1").Validate(false))
	assert.ErrorContains(t, parse(false, "--broker=ssl://h:8883", "--username=u", "--password_secret=s").Validate(false), "--password_secret")
	assert.Len(t, parse(false, "--broker=ssl://h:8883", "--username=u", "--password_secret=projects/p/secrets/s/versions/1").ReadOptions(), 4)

	// MQTT 5 and its flags.
	for args, want := range map[string]string{
		"--mqtt_version=4":                     "--mqtt_version: 4 is not 3 (MQTT 3.1.1) or 5",
		"--session_expiry=1h":                  "--session_expiry: needs --mqtt_version=5",
		"--mqtt_version=5 --session_expiry=0s": "--session_expiry: 0s is less than a second",
		"--inflight_window=-1":                 "--inflight_window: -1 is not from 0 to 65535",
	} {
		m := parse(false, append([]string{"--broker=tcp://h:1883"}, strings.Fields(args)...)...)
		assert.ErrorContains(t, m.Validate(true), want, args)
	}
	v5 := parse(false, "--broker=tcp://h:1883", "--mqtt_version=5", "--session_expiry=2h", "--inflight_window=100")
	require.NoError(t, v5.Validate(true))
	assert.Len(t, v5.ReadOptions(), 5, "InflightWindow, SessionExpiry, QoS, ClientID, ProtocolVersion")
	assert.Len(t, v5.WriteOptions(), 3)
	assert.Contains(t, v5.String(), "MQTT 5,")
	// The options go together: mqttio takes them at both versions.
	_, s := beam.NewPipelineWithRoot()
	for _, m := range []*MQTT{v5, parse(false, "--broker=tcp://h:1883")} {
		_, err := mqttio.TryRead(s, m.Brokers, []string{"a/#"}, m.ReadOptions()...)
		assert.NoError(t, err)
	}
}

// A client key file is for local runs; on Dataflow the key comes from
// Secret Manager. The certificate and one source of its key go together.
func TestMQTTClientKey(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	require.NoError(t, os.WriteFile(cert, []byte("cert"), 0o600))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	const secret = "projects/p/secrets/client-key/versions/1"
	validate := func(local bool, args ...string) error {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var m MQTT
		m.Register(fs, "job", false)
		require.NoError(t, fs.Parse(append([]string{"--broker=ssl://h:8883"}, args...)))
		return m.Validate(local)
	}
	assert.NoError(t, validate(true, "--tls_cert="+cert, "--tls_key="+key))
	assert.NoError(t, validate(true, "--tls_cert="+cert, "--tls_key_secret="+secret))
	assert.NoError(t, validate(false, "--tls_cert="+cert, "--tls_key_secret="+secret))
	for _, tc := range []struct {
		local bool
		args  []string
		want  string
	}{
		{false, []string{"--tls_cert=" + cert, "--tls_key=" + key}, "--tls_key: is for local runs: on Dataflow the key would travel inside the job graph"},
		{true, []string{"--tls_cert=" + cert, "--tls_key=" + key, "--tls_key_secret=" + secret}, "--tls_key_secret: give --tls_key or --tls_key_secret, not both"},
		{true, []string{"--tls_cert=" + cert}, "--tls_cert: needs its private key"},
		{true, []string{"--tls_key=" + key}, "--tls_cert: is required with a client key"},
		{false, []string{"--tls_key_secret=" + secret}, "--tls_cert: is required with a client key"},
		{false, []string{"--tls_cert=" + cert, "--tls_key_secret=client-key"}, `--tls_key_secret: "client-key" is not a secret version`},
		{true, []string{"--tls_cert=" + cert, "--tls_key=" + filepath.Join(dir, "missing.pem")}, "--tls_key: "},
	} {
		assert.ErrorContains(t, validate(tc.local, tc.args...), tc.want, tc.args)
	}
}

func TestRunnerLongNames(t *testing.T) {
	f := flag.Lookup("runner")
	if f == nil {
		flag.String("runner", "", "")
		f = flag.Lookup("runner")
	}
	old := f.Value.String()
	t.Cleanup(func() { _ = flag.Set("runner", old) })
	for in, want := range map[string]string{"": Prism, "DataflowRunner": Dataflow, "dataflow": Dataflow, "PrismRunner": Prism, "direct": Direct} {
		require.NoError(t, flag.Set("runner", in))
		assert.Equal(t, want, Runner(), in)
	}
}

func TestControlNamesTheBadFlag(t *testing.T) {
	parse := func(args ...string) *Control {
		t.Helper()
		var c Control
		fs := flag.NewFlagSet("job", flag.ContinueOnError)
		c.Register(fs, "Stop reading after this long", "messages")
		require.NoError(t, fs.Parse(args))
		return &c
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration=-1s"}, "--duration"},
		{[]string{"--progress_every=-1s"}, "--progress_every"},
		{[]string{"--max_records=-1"}, "--max_records: -1 is negative"},
	} {
		err := errors.Join(parse(tc.args...).Validate()...)
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	c := parse("--duration=1m", "--max_records=10")
	require.NoError(t, errors.Join(c.Validate()...))
	assert.Equal(t, Control{Duration: time.Minute, MaxRecords: 10, ProgressEvery: 5 * time.Second, Runner: Runner()}, *c)
}
