package main

import (
	"context"
	"log"
	"time"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/outputs"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// progressIn is the progress count of commands read.
const progressIn = "in"

// environment is what the job runs against: the brokers and the outputs.
type environment struct {
	brokers []string
	outputs *outputs.Outputs
	local   bool
	close   func()
}

// setup prepares the environment of the flags; the caller closes it.
func setup(cfg *config) (*environment, error) {
	env := &environment{brokers: cfg.MQTT.Brokers, local: jobflags.IsLocal(cfg.Runner)}
	var err error
	tables := map[string]string{rows.CommandsTable: cfg.OutputTable, rows.DeadLettersTable: cfg.DeadLetterTable}
	if env.outputs, env.close, err = jobflags.OpenOutputs(cfg.OutputDir, tables, cfg.BigQueryEndpoint); err != nil {
		return nil, err
	}
	env.outputs.Count = env.local
	return env, nil
}

// run builds the job and runs it. On a local runner, an interrupt (Ctrl-C)
// or SIGTERM drains it (see jobflags.StopOnInterrupt): the Pub/Sub reader
// stops taking commands, and those it emitted are published, audited and
// acknowledged before the job ends.
func run(ctx context.Context, cfg *config) error {
	env, err := setup(cfg)
	if err != nil {
		return err
	}
	defer env.close()
	p, err := build(cfg, env)
	if err != nil {
		return err
	}
	log.Printf("commands: %v", cfg)
	took, err := jobflags.Run(ctx, "commands", p, &cfg.Control, progress.Report{Lines: []progress.Line{
		{Name: progressIn, Label: "in", Rate: true},
		{Name: rows.CommandsTable, Label: "audited"},
		{Name: rows.DeadLettersTable, Label: "dead letters"},
	}})
	if err != nil {
		return err
	}
	if env.local {
		log.Printf("commands: done in %v: %d commands in, %d audit rows%s", took.Round(time.Millisecond),
			progress.Value(progressIn), progress.Value(rows.CommandsTable), where(cfg))
	}
	return nil
}

// where says where a local run's output went.
func where(cfg *config) string {
	if cfg.OutputDir == "" {
		return ""
	}
	return "; audit in " + cfg.OutputDir + "/" + rows.CommandsTable + ".jsonl"
}
