package devicesim

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
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
