package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/localenv"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/outputs"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
)

// progressIn is the progress count of messages read.
const progressIn = "in"

// environment is what the job runs against: the brokers, the registry and
// rules, the outputs, and on local runs the embedded broker and simulated
// fleet.
type environment struct {
	registry string
	rules    []rules.Rule
	outputs  *outputs.Outputs
	local    bool
	*localenv.Env
}

// setup prepares the environment of the flags; the caller closes it.
func setup(ctx context.Context, cfg *config) (env *environment, err error) {
	env = &environment{Env: localenv.New(cfg.MQTT.Brokers, ""), registry: cfg.Registry, local: jobflags.IsLocal(cfg.Runner)}
	defer env.CloseOnError(&err)
	if cfg.MQTT.IsEmbedded() {
		if err := env.startFleet(ctx, cfg); err != nil {
			return env, err
		}
	}
	if cfg.Rules != "" {
		if env.rules, err = rules.Load(cfg.Rules); err != nil {
			return env, fmt.Errorf("--rules: %w", err)
		}
	}
	tables := map[string]string{
		rows.AggregatesTable:  cfg.OutputTable,
		rows.DeadLettersTable: cfg.DeadLetterTable,
		rows.CommandsTable:    cfg.CommandTable,
	}
	if cfg.RawTable != "" {
		tables[rows.ReadingsTable] = cfg.RawTable
	}
	out, closeOutputs, err := jobflags.OpenOutputs(cfg.OutputDir, tables, cfg.BigQueryEndpoint)
	if err != nil {
		return env, err
	}
	env.outputs = out
	env.OnClose(closeOutputs)
	env.outputs.Count = env.local
	return env, nil
}

// startFleet starts the embedded broker and the simulated devices, and
// makes the fleet's registry and the sample rules the defaults.
func (env *environment) startFleet(ctx context.Context, cfg *config) error {
	url, err := env.Broker()
	if err != nil {
		return err
	}
	if cfg.Registry == "" {
		dir, err := os.MkdirTemp("", "mqttbeam-registry")
		if err != nil {
			return fmt.Errorf("--broker=embedded: %w", err)
		}
		env.OnClose(func() { os.RemoveAll(dir) })
		env.registry = filepath.Join(dir, "devices.jsonl")
		var extra []string
		if cfg.SimulateProfile == devicesim.ProfileMixed {
			extra = devicesim.MixedDeviceIDs()
		}
		if err := devicesim.WriteRegistry(env.registry, cfg.SimulateDevices, extra...); err != nil {
			return err
		}
	}
	if cfg.Rules == "" {
		if env.rules, err = rules.ParseJSON(devicesim.SampleRules()); err != nil {
			return fmt.Errorf("the sample rules: %w", err)
		}
	}
	env.Devices(ctx, "telemetry", devicesim.Config{
		Broker: url, Devices: cfg.SimulateDevices, Rate: cfg.SimulateRate, QoS: 1,
		MalformedShare: cfg.SimulateMalformed, LateShare: cfg.SimulateLate, Late: cfg.Window + cfg.Window/4,
		Profile: cfg.SimulateProfile,
	})
	if cfg.SimulateProfile == devicesim.ProfileMixed {
		log.Printf("telemetry: and a gateway (batches for %s), plain-value meters and a Sparkplug B edge node with two devices: %v",
			strings.Join(devicesim.MixedDeviceIDs()[1:4], ", "), devicesim.MixedRoutes)
	}
	return nil
}

// run builds the job and runs it. On a local runner, an interrupt (Ctrl-C)
// or SIGTERM drains the readers so that the final windows fire; a second
// one kills the process (jobflags.Run).
func run(ctx context.Context, cfg *config) error {
	env, err := setup(ctx, cfg)
	if err != nil {
		return err
	}
	defer env.Close()
	p, err := build(cfg, env)
	if err != nil {
		return err
	}
	log.Printf("telemetry: %v", cfg)
	if cfg.notice != "" {
		log.Printf("telemetry: %s", cfg.notice)
	}

	took, err := jobflags.Run(ctx, "telemetry", p, &cfg.Control, progress.Report{Lines: []progress.Line{
		{Name: progressIn, Label: "in", Rate: true},
		{Name: rows.AggregatesTable, Label: "aggregates"},
		{Name: rows.DeadLettersTable, Label: "dead letters"},
		{Name: rows.CommandsTable, Label: "commands"},
	}, Window: cfg.window()})
	if err != nil {
		return err
	}
	if env.local {
		log.Printf("telemetry: done in %v: %d messages in, %d aggregates, %d dead letters, %d commands%s",
			took.Round(time.Millisecond), progress.Value(progressIn), progress.Value(rows.AggregatesTable),
			progress.Value(rows.DeadLettersTable), progress.Value(rows.CommandsTable), where(cfg))
	}
	return nil
}

// where says where a local run's output went.
func where(cfg *config) string {
	if cfg.OutputDir == "" {
		return ""
	}
	return "; output in " + cfg.OutputDir + "/{" + rows.AggregatesTable + "," + rows.ReadingsTable + "," +
		rows.DeadLettersTable + "," + rows.CommandsTable + "}.jsonl"
}

// window is the windows' grid for the progress lines (progress.Report),
// none for session windows, which start with the data.
func (c *config) window() func(time.Time) (time.Time, time.Time) {
	switch c.WindowType {
	case "session":
		return nil
	case "sliding":
		return progress.Grid(c.Window, c.WindowPeriod)
	default:
		return progress.Grid(c.Window, 0)
	}
}
