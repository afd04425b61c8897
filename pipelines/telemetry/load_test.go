package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// A burst as a fleet makes it: 30 devices publish 50 QoS 1 messages each
// (30 mosquitto_pub -l at once) into a running job with 5 s windows and the
// default lateness settings. The devices' clocks are up to 2 s off either
// way, and the burst starts 1.5 s after a window boundary, so the readings
// of the clocks that are 2 s behind belong to the window that closed 1.5 s
// before (with the former 1 s default hold they were too late). Every
// device's counts over its windows add up to 50 exactly, and nothing is a
// dead letter: no reading is late, lost or taken for a copy.
//
// At MQTT 3.1.1 the broker is sized as the README says (max_queued_messages
// above the largest burst a reader gets between two acknowledgements):
// Mosquitto's default of 1000 drops the rest of such a burst while the
// job's acknowledgements wait for the bundle to commit, which only its log
// tells.
func TestBurstCountsExactly(t *testing.T) {
	testBurst(t, []brokertest.MosquittoOption{brokertest.MosquittoMaxQueued(100000)})
}

// At MQTT 5 the same burst needs no broker setting: the reader announces a
// Receive Maximum of 1000, which Mosquitto does not count against its
// default max_queued_messages of 1000.
func TestBurstCountsExactlyMQTT5(t *testing.T) {
	testBurst(t, nil, "--mqtt_version=5")
}

// testBurst runs the burst against a Mosquitto started with opts and a job
// with flags.
func testBurst(t *testing.T, opts []brokertest.MosquittoOption, flags ...string) {
	const devices, perDevice = 30, 50
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		brokertest.SkipOrFail(t, fmt.Errorf("mosquitto_pub: %w (apt-get install mosquitto-clients)", err))
	}
	broker := brokertest.Mosquitto(t, opts...)
	dir := t.TempDir()
	cfg, err := parseFlags(append([]string{"--broker=" + broker.URL(), "--client_id=burst", "--window=5s",
		fmt.Sprintf("--max_records=%d", devices*perDevice+1), "--output_dir=" + dir, "--progress_every=0s"}, flags...)...)
	require.NoError(t, err)

	// The burst starts once the job reads: a probe, kept for the reader by
	// its session, has reached the readings.
	presubscribe(t, broker.URL(), "burst-0", cfg.Topics[0])
	pub := brokertest.Connect(t, brokertest.ClientOptions(broker.URL(), "burst-probe"))
	brokertest.Await(t, pub.Publish("devices/probe/telemetry", 1, false, fmt.Sprintf(`{"ts":%d,"probe":1}`, time.Now().UnixMilli())))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	readings := filepath.Join(dir, rows.ReadingsTable+".jsonl")
	awaitReadings := func(n int) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			got, _ := jsonl.ReadFile[rows.Reading](readings)
			if len(got) >= n {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("the job ended with %d of %d readings: %v", len(got), n, err)
			case <-ctx.Done():
				t.Fatalf("the job wrote %d of %d readings within the timeout", len(got), n)
			case <-tick.C:
			}
		}
	}
	awaitReadings(1)

	// Start 1.5 s after a boundary of the 5 s window grid: a clock alignment
	// (at most 5 s), not a wait for something to happen.
	window := 5 * time.Second
	start := time.Now().Truncate(window).Add(1500 * time.Millisecond)
	if start.Before(time.Now()) {
		start = start.Add(window)
	}
	select {
	case <-time.After(time.Until(start)):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	skew := func(d int) time.Duration { return time.Duration(d%5-2) * time.Second }
	all := make([]int, devices)
	for d := range all {
		all[d] = d
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(broker.URL(), "tcp://"), ":")
	burst(t, ctx, host, port, all, perDevice, func(d int) time.Time { return time.Now().Add(skew(d)) })
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		awaitReadings(devices*perDevice + 1) // fails, saying how many
	}

	counts := map[string]int64{}
	aggs, err := jsonl.ReadFile[rows.Aggregate](filepath.Join(dir, rows.AggregatesTable+".jsonl"))
	require.NoError(t, err)
	for _, a := range aggs {
		if a.Metric == "temperature" {
			counts[a.DeviceID] += a.Count
		}
	}
	for d := range devices {
		id := fmt.Sprintf("dev-%02d", d)
		assert.Equal(t, int64(perDevice), counts[id], "readings of %s over its windows", id)
	}
	dead, err := jsonl.ReadFile[rows.DeadLetter](filepath.Join(dir, rows.DeadLettersTable+".jsonl"))
	if !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err)
	}
	assert.Empty(t, dead, "no dead letters")
}

// burst publishes n QoS 1 messages from each of the devices at once, one
// mosquitto_pub -l per device, stamped by the device's clock.
func burst(t *testing.T, ctx context.Context, host, port string, devices []int, n int, clock func(int) time.Time) {
	var wg sync.WaitGroup
	errs := make(chan error, len(devices))
	for _, d := range devices {
		var lines strings.Builder
		for i := range n {
			ts := clock(d).Add(time.Duration(i) * time.Millisecond).UnixMilli()
			fmt.Fprintf(&lines, `{"ts":%d,"temperature":%d,"seq":%d}`+"\n", ts, 20+i%7, i)
		}
		cmd := exec.CommandContext(ctx, "mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-l",
			"-i", fmt.Sprintf("burst-pub-%d", d), "-t", fmt.Sprintf("devices/dev-%02d/telemetry", d))
		cmd.Stdin = strings.NewReader(lines.String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("mosquitto_pub: %v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
