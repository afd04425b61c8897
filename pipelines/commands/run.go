package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/localenv"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/outputs"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// progressIn is the progress count of commands read.
const progressIn = "in"

// mqttFile is the file of a local run on the embedded broker: the commands
// as the devices received them.
const mqttFile = "mqtt_messages.jsonl"

// environment is what the job runs against: the brokers, the Pub/Sub
// endpoint, the outputs, and on local runs what stands in for the systems
// around the job.
type environment struct {
	outputs *outputs.Outputs
	local   bool
	*localenv.Env
}

// setup prepares the environment of the flags; the caller closes it. With
// the embedded Pub/Sub server, a simulated backend publishes commands; with
// the embedded broker, what the devices receive goes to mqttFile.
func setup(ctx context.Context, cfg *config) (env *environment, err error) {
	env = &environment{Env: localenv.New(cfg.MQTT.Brokers, cfg.PubSubEndpoint), local: jobflags.IsLocal(cfg.Runner)}
	defer env.CloseOnError(&err)
	tables := map[string]string{rows.CommandsTable: cfg.OutputTable, rows.DeadLettersTable: cfg.DeadLetterTable}
	out, closeOutputs, err := jobflags.OpenOutputs(cfg.OutputDir, tables, cfg.BigQueryEndpoint)
	if err != nil {
		return env, err
	}
	env.outputs = out
	env.OnClose(closeOutputs)
	env.outputs.Count = env.local
	if cfg.MQTT.IsEmbedded() {
		url, err := env.Broker()
		if err != nil {
			return env, err
		}
		if cfg.OutputDir != "" {
			path := filepath.Join(cfg.OutputDir, mqttFile)
			log.Printf("commands: embedded broker at %s; what the devices receive goes to %s", url, path)
			if err := env.RecordMQTT("commands", url, "devices/#", path); err != nil {
				return env, err
			}
		}
	}
	if cfg.PubSubEndpoint == jobflags.Embedded {
		topic := jobflags.SubscriptionTopic(cfg.InputSubscription)
		ps, err := env.PubSub(topic, cfg.InputSubscription)
		if err != nil {
			return env, err
		}
		ps.Backend(ctx, "commands", topic, time.Second, backendCommand)
	}
	return env, nil
}

// backendCommand is the i-th command of the simulated backend, to one of
// ten devices; every seventh (from the third) is invalid (an unsafe device
// id, not JSON, no command), which the audit shows rejected with the reason.
func backendCommand(i int) ([]byte, map[string]string) {
	device := devicesim.DeviceID(i % 10)
	switch i % 21 {
	case 2:
		return []byte(`{"device_id": "devices/+", "command": {"action": "reboot"}}`), nil
	case 9:
		return []byte(`reboot ` + device), nil
	case 16:
		return []byte(`{"device_id": "` + device + `"}`), nil
	}
	return []byte(fmt.Sprintf(`{"device_id": %q, "command": {"action": "set_fan", "speed": %d}, "id": "c-%d"}`, device, i%3, i)), nil
}

// run builds the job and runs it. On a local runner, an interrupt (Ctrl-C)
// or SIGTERM drains it (see jobflags.StopOnInterrupt): the Pub/Sub reader
// stops taking commands, and those it emitted are published, audited and
// acknowledged before the job ends.
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
