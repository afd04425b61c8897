package devicesim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// A bounded fleet publishes exactly MaxMessages messages, spread evenly over
// its devices, with the malformed and late shares it reports.
func TestRun(t *testing.T) {
	broker, err := embeddedbroker.Start()
	require.NoError(t, err)
	t.Cleanup(func() { broker.Close() })

	const total = 400
	inbox := make(brokertest.Inbox, total)
	sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "sub"))
	brokertest.Await(t, sub.Subscribe("devices/+/telemetry", 1, inbox.Handle))

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var stats Stats
	cfg := Config{Broker: broker.URL(), Devices: 20, QoS: 1, MalformedShare: 0.1, LateShare: 0.1,
		MaxMessages: total, Seed: 7, Now: func() time.Time { return now }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, Run(ctx, cfg, &stats))
	require.Equal(t, int64(total), stats.Published.Load())

	devices := map[string]int{}
	var malformed, late int64
	for range total {
		var m paho.Message
		select {
		case m = <-inbox:
		case <-ctx.Done():
			t.Fatal("timed out waiting for messages")
		}
		devices[m.Topic()]++
		var v struct {
			TS          int64    `json:"ts"`
			Temperature *float64 `json:"temperature"`
		}
		if json.Unmarshal(m.Payload(), &v) != nil || v.Temperature == nil || v.TS == 0 {
			malformed++
			continue
		}
		if time.UnixMilli(v.TS).Equal(now.Add(-90 * time.Second)) {
			late++
		} else {
			assert.Equal(t, now.UnixMilli(), v.TS)
		}
	}
	assert.Len(t, devices, 20)
	for topic, n := range devices {
		assert.Equal(t, total/20, n, topic)
	}
	assert.Equal(t, stats.Malformed.Load(), malformed)
	assert.Equal(t, stats.Late.Load(), late)
	assert.InDelta(t, 40, malformed, 25)
	assert.InDelta(t, 40, late, 25)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Broker is empty"},
		{Config{Broker: "tcp://x", Rate: -1}, "Rate"},
		{Config{Broker: "tcp://x", MalformedShare: 2}, "MalformedShare"},
		{Config{Broker: "tcp://x", LateShare: -0.1}, "LateShare"},
		{Config{Broker: "tcp://x", QoS: 2}, "QoS"},
		{Config{Broker: "tcp://x", Devices: 2, Connections: 3}, "Connections"},
		{Config{Broker: "tcp://x", Profile: "csv"}, `Profile "csv"`},
	} {
		err := Run(context.Background(), tc.cfg, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestWriteRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg", "devices.jsonl")
	require.NoError(t, WriteRegistry(path, 20))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]string
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		assert.NotEmpty(t, rec["site"])
		ids[rec["device_id"]] = true
	}
	assert.Len(t, ids, 18)
	assert.True(t, ids[DeviceID(0)])
	assert.False(t, ids[DeviceID(9)])
}

func TestSampleRulesParse(t *testing.T) {
	rs, err := rules.ParseJSON(SampleRules())
	require.NoError(t, err)
	require.Len(t, rs, 2)
	assert.Equal(t, "overheat", rs[0].Name)
}

// The mixed profile: JSON devices, a gateway's batches for its children,
// plain-value meters and a Sparkplug B edge node that publishes its BIRTHs
// first, DATA by alias with consecutive seqs, and its BIRTHs again when an
// NCMD asks.
func TestRunMixed(t *testing.T) {
	broker, err := embeddedbroker.Start()
	require.NoError(t, err)
	t.Cleanup(func() { broker.Close() })
	inbox := make(brokertest.Inbox, 10000)
	sub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "sub"))
	for _, f := range []string{"devices/+/telemetry", "gateways/+/telemetry", "devices/+/values/+", "spBv1.0/#"} {
		brokertest.Await(t, sub.Subscribe(f, 1, inbox.Handle))
	}

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var stats Stats
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Broker: broker.URL(), Devices: 2, Rate: 50, QoS: 1, Profile: ProfileMixed, Seed: 3,
			Now: func() time.Time { return now }}, &stats)
	}()

	seen := map[string]int{}
	var sparkplugTypes []string
	var seqs []uint64
	asked, reborn := false, false
	for !reborn {
		var m paho.Message
		select {
		case m = <-inbox:
		case <-ctx.Done():
			t.Fatalf("timed out; seen %v, Sparkplug B %v", seen, sparkplugTypes)
		}
		topic := m.Topic()
		switch {
		case strings.HasPrefix(topic, "gateways/"):
			var b struct {
				TS       int64 `json:"ts"`
				Readings []struct {
					DeviceID    string   `json:"device_id"`
					TS          int64    `json:"ts"`
					Temperature *float64 `json:"temperature"`
				} `json:"readings"`
			}
			require.NoError(t, json.Unmarshal(m.Payload(), &b))
			assert.Equal(t, "gateways/gw-00/telemetry", topic)
			require.Len(t, b.Readings, 3)
			for i, r := range b.Readings {
				assert.Equal(t, fmt.Sprintf("gw-00-ble-%d", i), r.DeviceID)
				assert.NotNil(t, r.Temperature)
				assert.Less(t, r.TS, b.TS)
			}
			seen["batch"]++
		case strings.Contains(topic, "/values/"):
			v := string(m.Payload())
			if strings.HasSuffix(topic, "/running") {
				assert.Contains(t, []string{"true", "false"}, v)
			} else {
				_, err := strconv.ParseFloat(v, 64)
				assert.NoError(t, err, v)
			}
			seen["value"]++
		case strings.HasPrefix(topic, "spBv1.0/"):
			st, err := sparkplug.ParseTopic(topic)
			require.NoError(t, err)
			if !st.IsTelemetry() {
				continue // the test's own NCMD
			}
			var p sparkplug.Payload
			require.NoError(t, sparkplug.Decode(m.Payload(), &p))
			assert.Equal(t, "sim", st.Group)
			sparkplugTypes = append(sparkplugTypes, st.Type)
			seqs = append(seqs, p.Seq)
			if st.Type == sparkplug.DDATA {
				for _, mt := range p.Metrics {
					assert.True(t, mt.HasAlias)
					assert.Empty(t, mt.Name, "DATA go by alias")
				}
			}
			if st.Type == sparkplug.DDATA && !asked {
				asked = true
				req := sub.Publish("spBv1.0/sim/NCMD/edge-0", 1, false, sparkplug.RebirthRequest(now))
				brokertest.Await(t, req)
			}
			if st.Type == sparkplug.NBIRTH && len(sparkplugTypes) > 1 {
				reborn = true
			}
			seen["sparkplug"]++
		default:
			seen["json"]++
		}
	}
	cancel()
	require.NoError(t, <-done)
	for _, k := range []string{"json", "batch", "value", "sparkplug"} {
		assert.NotZero(t, seen[k], k)
	}
	// BIRTHs first: the NBIRTH (seq 0), the two DBIRTHs, then DATA; the
	// seqs count on from the NBIRTH's, and the rebirth starts at 0 again.
	require.GreaterOrEqual(t, len(sparkplugTypes), 5)
	assert.Equal(t, []string{sparkplug.NBIRTH, sparkplug.DBIRTH, sparkplug.DBIRTH}, sparkplugTypes[:3])
	for i := range seqs[:len(seqs)-1] {
		assert.Equal(t, uint64(i%256), seqs[i], "seq of message %d (%s)", i, sparkplugTypes[i])
	}
	assert.Equal(t, uint64(0), seqs[len(seqs)-1])
	assert.Equal(t, int64(1), stats.Rebirths.Load())
}

func TestMixedRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.jsonl")
	require.NoError(t, WriteRegistry(path, 2, MixedDeviceIDs()...))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, id := range append([]string{DeviceID(0), DeviceID(1)}, MixedDeviceIDs()...) {
		assert.Contains(t, string(b), `"device_id":"`+id+`"`)
	}
	assert.Contains(t, MixedDeviceIDs(), "sim/edge-0/pump-2")
	assert.Contains(t, MixedDeviceIDs(), "gw-00-ble-2")
}
