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

// Progress counts of messages read and bridged.
const (
	progressIn  = "in"
	progressOut = "out"
)

// environment is what the job runs against: the outputs of the dead
// letters (Pub/Sub -> MQTT only).
type environment struct {
	outputs *outputs.Outputs
	local   bool
	close   func()
}

// setup prepares the environment of the flags; the caller closes it.
func setup(cfg *config) (*environment, error) {
	env := &environment{local: jobflags.IsLocal(cfg.Runner), close: func() {}}
	if cfg.Direction == toMQTT {
		var err error
		tables := map[string]string{rows.DeadLettersTable: cfg.DeadLetterTable}
		if env.outputs, env.close, err = jobflags.OpenOutputs(cfg.OutputDir, tables, cfg.BigQueryEndpoint); err != nil {
			return nil, err
		}
		env.outputs.Count = env.local
	}
	return env, nil
}

// run builds the job and runs it. On a local runner, an interrupt (Ctrl-C)
// or SIGTERM drains it (see jobflags.StopOnInterrupt): the reader, MQTT or
// Pub/Sub, stops taking messages, and what it emitted is published and
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
	log.Printf("bridge: %v", cfg)
	took, err := jobflags.Run(ctx, "bridge", p, &cfg.Control, progress.Report{Lines: []progress.Line{
		{Name: progressIn, Label: "in", Rate: true},
		{Name: progressOut, Label: "out"},
		{Name: rows.DeadLettersTable, Label: "dead letters"},
	}})
	if err != nil {
		return err
	}
	if env.local {
		log.Printf("bridge: done in %v: %d messages in, %d out, %d dead letters", took.Round(time.Millisecond),
			progress.Value(progressIn), progress.Value(progressOut), progress.Value(rows.DeadLettersTable))
	}
	return nil
}
