package main

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/localenv"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/outputs"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// Progress counts of messages read and bridged.
const (
	progressIn  = "in"
	progressOut = "out"
)

// Files of a local run on the embedded Pub/Sub server or broker: what the
// job published, as the other side received it.
const (
	pubsubFile = "pubsub_messages.jsonl"
	mqttFile   = "mqtt_messages.jsonl"
)

// environment is what the job runs against: the brokers, the Pub/Sub
// endpoint, the outputs of the dead letters (Pub/Sub -> MQTT only) and on
// local runs what stands in for the systems around the job.
type environment struct {
	outputs  *outputs.Outputs
	local    bool
	recorded string // the file of what the other side received; empty: none
	*localenv.Env
}

// setup prepares the environment of the flags; the caller closes it.
func setup(ctx context.Context, cfg *config) (env *environment, err error) {
	env = &environment{Env: localenv.New(cfg.MQTT.Brokers, cfg.PubSubEndpoint), local: jobflags.IsLocal(cfg.Runner)}
	defer env.CloseOnError(&err)
	if cfg.OutputDir != "" {
		if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
			return env, jobflags.Errorf("output_dir", "%v", err)
		}
	}
	if cfg.MQTT.IsEmbedded() {
		if _, err := env.Broker(); err != nil {
			return env, err
		}
	}
	if cfg.Direction == toPubSub {
		err = env.startToPubSub(ctx, cfg)
	} else {
		err = env.startToMQTT(ctx, cfg)
	}
	if err != nil {
		return env, err
	}
	if cfg.Direction == toMQTT {
		tables := map[string]string{rows.DeadLettersTable: cfg.DeadLetterTable}
		out, closeOutputs, err := jobflags.OpenOutputs(cfg.OutputDir, tables, cfg.BigQueryEndpoint)
		if err != nil {
			return env, err
		}
		env.outputs = out
		env.OnClose(closeOutputs)
		env.outputs.Count = env.local
	}
	return env, nil
}

// startToPubSub starts what a local MQTT -> Pub/Sub run stands on: the
// simulated devices on the embedded broker, and the embedded Pub/Sub server
// with a subscription whose messages go to pubsubFile.
func (env *environment) startToPubSub(ctx context.Context, cfg *config) error {
	if cfg.MQTT.IsEmbedded() {
		env.Devices(ctx, "bridge", devicesim.Config{Broker: env.Brokers[0], Devices: 10, Rate: 1, QoS: 1})
	}
	if cfg.PubSubEndpoint != jobflags.Embedded {
		return nil
	}
	sub := jobflags.TopicSubscription(cfg.OutputTopic) + "-received"
	ps, err := env.PubSub(cfg.OutputTopic, sub)
	if err != nil {
		return err
	}
	env.recorded = filepath.Join(cfg.OutputDir, pubsubFile)
	log.Printf("bridge: embedded Pub/Sub at %s; what the bridge publishes to %s goes to %s", ps.Addr, cfg.OutputTopic, env.recorded)
	return ps.Record(ctx, "bridge", sub, env.recorded)
}

// startToMQTT starts what a local Pub/Sub -> MQTT run stands on: the
// embedded Pub/Sub server with a simulated backend publishing to the
// subscription's topic, and a recorder of what the bridge publishes to the
// embedded broker (mqttFile).
func (env *environment) startToMQTT(ctx context.Context, cfg *config) error {
	if cfg.PubSubEndpoint == jobflags.Embedded {
		topic := jobflags.SubscriptionTopic(cfg.InputSubscription)
		ps, err := env.PubSub(topic, cfg.InputSubscription)
		if err != nil {
			return err
		}
		ps.Backend(ctx, "bridge", topic, time.Second, backendMessage)
	}
	if cfg.MQTT.IsEmbedded() && cfg.OutputDir != "" {
		env.recorded = filepath.Join(cfg.OutputDir, mqttFile)
		log.Printf("bridge: embedded broker at %s; what the bridge publishes goes to %s", env.Brokers[0], env.recorded)
		return env.RecordMQTT("bridge", env.Brokers[0], "#", env.recorded)
	}
	return nil
}

// backendMessage is the i-th message of the simulated backend: a command
// to one of ten devices, routed by its mqtt_topic attribute (and device_id,
// for --mqtt_topic_template), every tenth (from the third) with an unsafe
// topic, which the bridge turns into a dead letter.
func backendMessage(i int) ([]byte, map[string]string) {
	device := devicesim.DeviceID(i % 10)
	data, _ := json.Marshal(map[string]any{"action": "blink", "seq": i})
	topic := "devices/" + device + "/commands"
	if i%10 == 2 {
		topic = "devices/+/commands"
	}
	return data, map[string]string{AttrTopic: topic, "device_id": device}
}

// run builds the job and runs it. On a local runner, an interrupt (Ctrl-C)
// or SIGTERM drains it (see jobflags.StopOnInterrupt): the reader, MQTT or
// Pub/Sub, stops taking messages, and what it emitted is published and
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
