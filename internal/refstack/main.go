// Command refstack runs the reference architecture on loopback, for
// scripts/reference-stack.sh: a three-node RabbitMQ cluster (MQTT plugin),
// HAProxy in front of it terminating TLS and sticking each client id to a
// node, and a Mosquitto edge broker bridged to the cluster through the
// balancer over TLS (telemetry up, commands down), with devices behind it.
//
// Without --check it runs simulated devices on the edge broker and, given
// --telemetry, the telemetry job reading through the balancer, until
// Ctrl-C. With --check it publishes a known set of QoS 1 messages through
// the edge broker while an mqttio reader (the telemetry job's source) reads
// them through the balancer and sends a command back for some of them,
// kills the cluster node that holds the reader's queue mid-stream, brings
// it back, and prints as its last line
//
//	reference_stack: published=N received=M lost=K duplicates=D commands_delivered=C
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/devicesim"
)

// stack is the running reference architecture.
type stack struct {
	dir     string
	pki     certs.Certs
	cluster *brokertest.RabbitMQCluster
	lb      *brokertest.HAProxyBalancer
	edge    *brokertest.MosquittoBroker
}

func main() {
	check := flag.Bool("check", false, "Publish a known set of messages, kill a cluster node mid-stream, report what arrived, and exit")
	queueType := flag.String("queue_type", "quorum", "RabbitMQ mqtt.durable_queue_type: quorum (replicated) or classic (on one node)")
	messages := flag.Int("messages", 3000, "With --check: QoS 1 messages to publish")
	rate := flag.Float64("rate", 150, "With --check: messages per second, over all devices")
	devices := flag.Int("devices", 10, "Simulated devices behind the edge broker")
	telemetry := flag.String("telemetry", "", "Without --check: the telemetry job's binary, run against the balancer")
	flag.Parse()
	beam.Init()
	if *queueType != "quorum" && *queueType != "classic" {
		fail(2, fmt.Errorf("--queue_type must be quorum or classic, got %q", *queueType))
	}
	if *messages < 30 || *devices < 1 || *rate <= 0 {
		fail(2, errors.New("--messages must be at least 30, --devices at least 1 and --rate positive"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := start(*queueType)
	if s != nil {
		defer s.close()
	}
	if err != nil {
		fail(1, err)
	}
	s.describe(*queueType)
	if *check {
		r, err := runCheck(ctx, s, checkConfig{messages: *messages, devices: *devices, rate: *rate})
		if err != nil {
			fail(1, err)
		}
		fmt.Printf("reference_stack: published=%d received=%d lost=%d duplicates=%d commands_delivered=%d\n",
			r.published, r.received, r.lost, r.duplicates, r.commandsDelivered)
		if r.lost > 0 || r.commandsDelivered < r.commandsSent {
			s.close()
			os.Exit(1)
		}
		return
	}
	if err := runInteractive(ctx, s, *devices, *telemetry); err != nil && ctx.Err() == nil {
		fail(1, err)
	}
	fmt.Fprintln(os.Stderr, "refstack: stopping everything")
}

// fail prints err and exits with code.
func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "refstack:", err)
	os.Exit(code)
}

// start brings up the cluster, the balancer and the edge broker.
func start(queueType string) (*stack, error) {
	dir, err := os.MkdirTemp("", "mqttbeam-refstack-")
	if err != nil {
		return nil, err
	}
	s := &stack{dir: dir}
	sub := func(name string) string {
		d := filepath.Join(dir, name)
		if err == nil {
			err = os.Mkdir(d, 0o755)
		}
		return d
	}
	pkiDir, rabbitDir, lbDir, edgeDir := sub("pki"), sub("rabbitmq"), sub("haproxy"), sub("edge")
	if err != nil {
		return s, err
	}
	if s.pki, err = certs.GenerateCerts(pkiDir); err != nil {
		return s, err
	}
	fmt.Fprintln(os.Stderr, "refstack: starting a three-node RabbitMQ cluster (about 30 s)")
	if s.cluster, err = brokertest.StartRabbitMQ(rabbitDir, brokertest.RabbitMQNodes(3), brokertest.RabbitMQQueueType(queueType)); err != nil {
		return s, err
	}
	if s.lb, err = brokertest.StartHAProxy(lbDir, s.cluster.Addrs(), brokertest.HAProxyTLS(s.pki)); err != nil {
		return s, err
	}
	s.edge, err = brokertest.StartMosquitto(edgeDir, brokertest.MosquittoBridge(brokertest.Bridge{
		Name:    "edge-1",
		Address: s.lb.Addr(),
		CAFile:  s.pki.CAFile,
		Topics:  []string{"devices/+/telemetry/# out 1", "devices/+/commands in 1"},
	}))
	return s, err
}

// describe prints what runs where.
func (s *stack) describe(queueType string) {
	fmt.Printf("reference stack (files in %s):\n", s.dir)
	for i := range s.cluster.Nodes() {
		fmt.Printf("  rabbitmq node %-20s %s  (MQTT plugin, mqtt.durable_queue_type=%s)\n", s.cluster.NodeName(i), s.cluster.URL(i), queueType)
	}
	fmt.Printf("  haproxy                          %s  (TLS terminated, leastconn, sticky on the MQTT client id)\n", s.lb.URL())
	fmt.Printf("  edge mosquitto                   %s  (bridge edge-1 over TLS to the balancer: devices/+/telemetry/# out, devices/+/commands in)\n", s.edge.URL())
	fmt.Printf("  CA of the balancer's certificate %s\n", s.pki.CAFile)
	fmt.Printf("Flags for the pipelines (RabbitMQ 3.10 has no shared subscriptions: keep --readers=1; its prefetch is 10):\n")
	fmt.Printf("FLAGS: --broker=%s --tls_ca=%s --inflight_window=10\n", s.lb.URL(), s.pki.CAFile)
	fmt.Printf("Devices publish to the edge: --broker=%s\n", s.edge.URL())
}

// close stops everything, the edge first.
func (s *stack) close() {
	var errs []error
	if s.edge != nil {
		errs = append(errs, s.edge.Close())
	}
	if s.lb != nil {
		errs = append(errs, s.lb.Close())
	}
	if s.cluster != nil {
		errs = append(errs, s.cluster.Close())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "refstack: stopping:", err)
	}
	os.RemoveAll(s.dir)
	s.edge, s.lb, s.cluster = nil, nil, nil
}

// runInteractive runs simulated devices on the edge broker and, if given,
// the telemetry job against the balancer, until ctx ends.
func runInteractive(ctx context.Context, s *stack, devices int, telemetry string) error {
	errs := make(chan error, 2)
	go func() {
		errs <- devicesim.Run(ctx, devicesim.Config{Broker: s.edge.URL(), Devices: devices, Rate: 1, QoS: 1}, nil)
	}()
	fmt.Printf("%d simulated devices publish to the edge broker, one message a second each\n", devices)
	if telemetry != "" {
		out := filepath.Join(s.dir, "out")
		args := []string{"--broker=" + s.lb.URL(), "--tls_ca=" + s.pki.CAFile, "--inflight_window=10",
			"--client_id=refstack-telemetry", "--topic=devices/+/telemetry/#", "--window=10s",
			"--rules=" + filepath.Join("testdata", "rules", "rules.yaml"), "--output_dir=" + out}
		cmd := exec.CommandContext(ctx, telemetry, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		fmt.Printf("telemetry job: %s %v\n  output in %s\n", telemetry, args, out)
		go func() { errs <- cmd.Run() }()
	}
	fmt.Println("Ctrl-C stops everything and removes the files.")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}
