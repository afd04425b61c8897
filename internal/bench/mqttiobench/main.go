// Command mqttiobench measures mqttio.Read and mqttio.Write against a
// Mosquitto broker and compares them with plain paho.mqtt.golang clients.
// scripts/bench-mqttio.sh starts the brokers and runs one subcommand per
// phase; each phase prints its figures as name=value lines on stdout (logs go
// to stderr), and the summarize subcommand turns the collected lines into the
// final report.
//
// Usage:
//
//	mqttiobench freeport
//	mqttiobench rawsub      -broker URL -qos Q -n N -name NAME
//	mqttiobench read        -broker URL -qos Q -n N -window W -name NAME
//	mqttiobench rawpub      -broker URL -qos Q -n N -name NAME
//	mqttiobench write       -broker URL -qos Q -n N -name NAME
//	mqttiobench backlog-fill -broker URL -id ID -n N
//	mqttiobench backlog-read -broker URL -id ID -n N -window W
//	mqttiobench summarize   FILE...
//
// MQTTIOBENCH_LOG_LEVEL (debug, info, warn, error) sets the level of the
// Beam SDK's and prism's logs.
//
// Every measuring subcommand takes -cpuprofile and -memprofile, and
// -timeout, which bounds the phase (the process exits with status 3 when the
// phase overruns it by a minute).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/mqttbeam/mqttbeam/internal/bench/benchcli"
)

// common holds the flags every measuring subcommand takes.
type common struct {
	broker     string
	n          int
	qos        int
	name       string
	size       int
	publishers int
	pending    int
	timeout    time.Duration
	idle       time.Duration
	cpuprofile string
	memprofile string
	version    int
}

func (c *common) register(fs *flag.FlagSet, name string, n int, idle time.Duration) {
	fs.StringVar(&c.broker, "broker", "", "broker URL, e.g. tcp://127.0.0.1:1883 (required)")
	fs.IntVar(&c.n, "n", n, "number of messages")
	fs.IntVar(&c.qos, "qos", 0, "MQTT QoS (0, 1 or 2)")
	fs.StringVar(&c.name, "name", name, "prefix of the figures printed")
	fs.IntVar(&c.size, "size", 100, "payload size in bytes (at least 11)")
	fs.IntVar(&c.publishers, "publishers", 2, "paho clients publishing in parallel")
	fs.IntVar(&c.pending, "pending", 1000, "publishes in flight per publishing client before it waits for the oldest")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Minute, "bound on the phase")
	fs.DurationVar(&c.idle, "idle", idle, "give up waiting once no message has arrived for this long after publishing ended")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the phase to this file")
	fs.StringVar(&c.memprofile, "memprofile", "", "write a heap profile at the end of the phase to this file")
	fs.IntVar(&c.version, "mqtt-version", 3, "MQTT version of the measured client (3: paho.mqtt.golang, 5: paho.golang) or of mqttio (ProtocolVersion); the publishers of the read phases speak 3.1.1")
}

func (c *common) check() error {
	switch {
	case c.broker == "":
		return errors.New("-broker is required")
	case c.n < 0 || c.n >= maxSeq:
		return fmt.Errorf("-n must be from 0 to %d, got %d", maxSeq-1, c.n)
	case c.qos < 0 || c.qos > 2:
		return fmt.Errorf("-qos must be 0, 1 or 2, got %d", c.qos)
	case c.size < minPayload:
		return fmt.Errorf("-size must be at least %d, got %d", minPayload, c.size)
	case c.publishers < 1:
		return fmt.Errorf("-publishers must be at least 1, got %d", c.publishers)
	case c.pending < 1 || c.pending > 60000:
		return fmt.Errorf("-pending must be from 1 to 60000, got %d", c.pending)
	case c.timeout <= 0 || c.idle <= 0:
		return errors.New("-timeout and -idle must be positive")
	case c.version != 3 && c.version != 5:
		return fmt.Errorf("-mqtt-version must be 3 or 5, got %d", c.version)
	}
	return nil
}

// setDefault changes the default of a flag registered by common.register.
func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if err := f.Value.Set(value); err != nil {
		panic(err)
	}
	f.DefValue = value
}

// phase is a measuring subcommand.
type phase struct {
	usage string
	run   func(ctx context.Context, args []string) error
}

var phases = map[string]phase{
	"rawsub":       {"plain paho subscriber's receive rate", runRawSub},
	"read":         {"mqttio.Read's receive rate on prism", runRead},
	"rawpub":       {"plain paho publish rate", runRawPub},
	"write":        {"mqttio.Write's publish rate on prism", runWrite},
	"backlog-fill": {"prime a persistent session and queue a backlog for it", runBacklogFill},
	"backlog-read": {"read the backlog with mqttio.Read; report rate and peak RSS", runBacklogRead},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mqttiobench SUBCOMMAND [flags]\n\nsubcommands:")
	fmt.Fprintln(os.Stderr, "  freeport      print a free TCP port on 127.0.0.1")
	for _, name := range []string{"rawsub", "read", "rawpub", "write", "backlog-fill", "backlog-read"} {
		fmt.Fprintf(os.Stderr, "  %-13s %s\n", name, phases[name].usage)
	}
	fmt.Fprintln(os.Stderr, "  summarize     print the figures of result files, then the ratios")
	fmt.Fprintln(os.Stderr, "\nRun 'mqttiobench SUBCOMMAND -h' for its flags.")
}

func main() {
	// Prism runs in this process and logs through the slog logger that
	// beam.Init sets up.
	if lvl := os.Getenv("MQTTIOBENCH_LOG_LEVEL"); lvl != "" {
		beamlog.LogLevel = lvl
	}
	beam.Init()
	commands := map[string]benchcli.Command{
		"summarize": runSummarize,
	}
	for name, ph := range phases {
		commands[name] = ph.run
	}
	benchcli.Main("mqttiobench", usage, commands)
}

// start parses a phase's flags, starts the profiles and the watchdog, and
// returns the context bounding the phase and the function that ends it.
func start(ctx context.Context, fs *flag.FlagSet, c *common, args []string) (context.Context, func(), error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	// A last resort against hangs that ignore the context (a runner that
	// does not stop, a blocked paho call): exit loudly.
	watchdog := time.AfterFunc(c.timeout+time.Minute, func() {
		fmt.Fprintf(os.Stderr, "mqttiobench %s: still running %v after its -timeout %v; exiting\n", fs.Name(), time.Minute, c.timeout)
		os.Exit(3)
	})
	var cpu *os.File
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			cancel()
			return nil, nil, err
		}
		cpu = f
	}
	stop := func() {
		watchdog.Stop()
		cancel()
		if cpu != nil {
			pprof.StopCPUProfile()
			_ = cpu.Close()
		}
		if c.memprofile != "" {
			f, err := os.Create(c.memprofile)
			if err == nil {
				runtime.GC()
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		}
	}
	return ctx, stop, nil
}

// logf logs progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s mqttiobench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
