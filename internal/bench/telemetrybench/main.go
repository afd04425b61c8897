// Command telemetrybench measures the telemetry job (pipelines/telemetry)
// end to end on prism against a Mosquitto broker fed by a simulated fleet
// (internal/devicesim), next to a plain paho subscriber under the same load.
// scripts/bench-telemetry.sh starts the broker, builds the job and runs one
// subcommand per phase; each phase prints its figures as name=value lines on
// stdout (progress goes to stderr), and summarize turns the collected lines
// into the report, whose last line is e2e_ratio=R.
//
// Usage:
//
//	telemetrybench freeport
//	telemetrybench rawsub   -broker URL [-devices N -connections C -duration D]
//	telemetrybench pipeline -broker URL -job BINARY -out DIR [-window W -duration D -inflight N -readers R]
//	telemetrybench summarize FILE...
//
// The load of both phases is devicesim.Config{Devices: N, Rate: 0, QoS: 1,
// Connections: C}: every device publishes as fast as the broker acknowledges,
// each message stamped (payload "ts", epoch milliseconds) with the
// publisher's clock just before it is handed to paho.
//
// Latencies, all measured with the clock of this machine:
//
//	publish_to_raw_paho   the plain subscriber's receive time - ts
//	publish_to_reading_row the time the message's row appeared in
//	                      readings.jsonl - ts
//	window_close_delay    the time an on-time aggregate row appeared in
//	                      aggregates.jsonl - its window_end
//	publish_to_aggregate_row the time the on-time aggregate row of the
//	                      message's device and window appeared - ts; about
//	                      the window's remaining length plus the close delay,
//	                      so its p99 is about window + close delay. The
//	                      issue's target (p99 <= window + 2 s) is on this one.
//
// A row "appears" when the file's size first covers its end; the harness
// looks every 25 ms.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/bench/benchcli"
)

// load holds the flags of the simulated fleet, shared by the phases.
type load struct {
	broker      string
	devices     int
	connections int
	qos         int
}

func (l *load) register(fs *flag.FlagSet) {
	fs.StringVar(&l.broker, "broker", "", "broker URL, e.g. tcp://127.0.0.1:1883 (required)")
	fs.IntVar(&l.devices, "devices", 10000, "simulated devices")
	fs.IntVar(&l.connections, "connections", 4, "MQTT connections the simulated devices share")
	fs.IntVar(&l.qos, "qos", 1, "QoS of the publishers, the plain subscriber and the job (0 or 1)")
}

func (l *load) check() error {
	switch {
	case l.broker == "":
		return errors.New("-broker is required")
	case l.devices < 1:
		return fmt.Errorf("-devices must be positive, got %d", l.devices)
	case l.connections < 1 || l.connections > l.devices:
		return fmt.Errorf("-connections must be from 1 to -devices (%d), got %d", l.devices, l.connections)
	case l.qos != 0 && l.qos != 1:
		return fmt.Errorf("-qos must be 0 or 1, got %d", l.qos)
	}
	return nil
}

// parse parses a phase's flags and checks them with check.
func parse(fs *flag.FlagSet, args []string, check func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return check()
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: telemetrybench SUBCOMMAND [flags]

subcommands:
  freeport   print a free TCP port on 127.0.0.1
  rawsub     a plain paho subscriber's receive rate and latency under the fleet's load
  pipeline   the telemetry job's rate, peak RSS and row latencies under the same load
  summarize  print the figures of result files, the targets met, and e2e_ratio last

Run 'telemetrybench SUBCOMMAND -h' for its flags.
`)
}

func main() {
	benchcli.Main("telemetrybench", usage, map[string]benchcli.Command{
		"rawsub":    runRawSub,
		"pipeline":  runPipeline,
		"summarize": runSummarize,
	})
}

// logf logs progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s telemetrybench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
