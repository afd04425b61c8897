package brokertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

const (
	// rabbitmqInstall installs RabbitMQ (its MQTT plugin is part of the package).
	rabbitmqInstall = "apt-get install -y rabbitmq-server"
	// rabbitmqLib is where Debian installs RabbitMQ's own scripts. (The
	// wrappers in /usr/sbin switch to the rabbitmq user when run as root,
	// who cannot read a test's private temporary directory.)
	rabbitmqLib = "/usr/lib/rabbitmq/bin"
	// rabbitmqReady bounds how long a node may take to boot and open its
	// MQTT listener: about 10 s on two busy cores, more with three at once.
	rabbitmqReady = 120 * time.Second
	// rabbitmqGrace bounds how long a node may take to stop after SIGTERM.
	rabbitmqGrace = 30 * time.Second
	// rabbitmqCtlTimeout bounds one rabbitmqctl command.
	rabbitmqCtlTimeout = 90 * time.Second
)

// rabbitConfig collects the settings made by RabbitMQOptions.
type rabbitConfig struct {
	nodes     int
	certs     *certs.Certs
	queueType string
	prefetch  int
}

// RabbitMQOption configures the cluster started by RabbitMQ. It returns an
// error, naming itself, when given an invalid value.
type RabbitMQOption func(*rabbitConfig) error

// RabbitMQNodes sets the number of nodes of the cluster (default 1).
func RabbitMQNodes(n int) RabbitMQOption {
	return func(c *rabbitConfig) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("RabbitMQNodes(%d): must be from 1 to 5", n)
		}
		c.nodes = n
		return nil
	}
}

// RabbitMQTLS adds an MQTT-over-TLS listener to every node, presenting
// c.ServerCert.
func RabbitMQTLS(c certs.Certs) RabbitMQOption {
	return func(cfg *rabbitConfig) error {
		for _, f := range []string{c.CAFile, c.ServerCert, c.ServerKey} {
			if strings.ContainsAny(f, "\r\n") {
				return fmt.Errorf("RabbitMQTLS: path %q contains a line break", f)
			}
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("RabbitMQTLS: %w", err)
			}
		}
		cfg.certs = &c
		return nil
	}
}

// RabbitMQQueueType sets mqtt.durable_queue_type, the type of the queues
// that hold the persistent sessions' QoS 1 subscriptions: "classic" (the
// default, a queue lives on the node where the session began) or "quorum"
// (replicated to every node by Raft; it survives the loss of a minority).
func RabbitMQQueueType(t string) RabbitMQOption {
	return func(c *rabbitConfig) error {
		if t != "classic" && t != "quorum" {
			return fmt.Errorf("RabbitMQQueueType(%q): must be classic or quorum", t)
		}
		c.queueType = t
		return nil
	}
}

// RabbitMQPrefetch sets mqtt.prefetch, the number of unacknowledged QoS 1
// messages a node sends one subscriber (default 10); RabbitMQ holds clients
// to it strictly.
func RabbitMQPrefetch(n int) RabbitMQOption {
	return func(c *rabbitConfig) error {
		if n < 1 || n > 65535 {
			return fmt.Errorf("RabbitMQPrefetch(%d): must be from 1 to 65535", n)
		}
		c.prefetch = n
		return nil
	}
}

// RabbitMQCluster is a RabbitMQ cluster on loopback started by RabbitMQ or
// StartRabbitMQ: nodes rabbit-1@localhost ... rabbit-N@localhost, each with
// its own ports, data and configuration, sharing an Erlang cookie and an epmd
// of their own on a free port (none of the host's Erlang services is used or
// disturbed). Every node runs the rabbitmq_mqtt plugin, with anonymous
// access.
type RabbitMQCluster struct {
	ctl   string   // rabbitmqctl
	env   []string // shared by the nodes and rabbitmqctl
	epmd  *daemon
	nodes []*rabbitNode
}

// rabbitNode is one node of a RabbitMQCluster.
type rabbitNode struct {
	name      string // such as "rabbit-1@localhost"
	mqtt, tls string // "127.0.0.1:port"; tls is "" without RabbitMQTLS
	conf      string
	d         *daemon
}

// RabbitMQ starts a RabbitMQ cluster configured by opts in t.TempDir() and
// stops it when the test ends; the nodes' logs are shown if the test fails.
// It takes seconds (about 10 s for one node, 25 s for three on two cores):
// start it once per test package (StartRabbitMQ from TestMain or a
// sync.Once) rather than once per test.
//
// Without rabbitmq-server the test is skipped, or fails if
// MQTTBEAM_REQUIRE_BROKERS is "1".
func RabbitMQ(t testing.TB, opts ...RabbitMQOption) *RabbitMQCluster {
	t.Helper()
	c, err := StartRabbitMQ(t.TempDir(), opts...)
	if err != nil {
		SkipOrFail(t, err)
	}
	cleanupServer(t, c.Describe, c.Close)
	return c
}

// StartRabbitMQ is RabbitMQ for programs and TestMain: it writes its files
// into dir (which must exist) and returns an error (a *NotInstalledError
// without RabbitMQ) instead of failing a test. The caller stops the cluster
// with Close.
func StartRabbitMQ(dir string, opts ...RabbitMQOption) (*RabbitMQCluster, error) {
	server := lookBin(filepath.Join(rabbitmqLib, "rabbitmq-server"))
	ctl := lookBin(filepath.Join(rabbitmqLib, "rabbitmqctl"))
	epmd := lookBin("epmd", "/usr/bin/epmd")
	if server == "" || ctl == "" || epmd == "" {
		return nil, &NotInstalledError{Broker: "rabbitmq-server", Install: rabbitmqInstall}
	}
	cfg := rabbitConfig{nodes: 1}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("brokertest: rabbitmq option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("brokertest: %w", err)
		}
	}

	c := &RabbitMQCluster{ctl: ctl}
	if err := c.prepare(dir, epmd); err != nil {
		return nil, fmt.Errorf("brokertest: rabbitmq: %w", err)
	}
	if err := c.epmd.start(); err != nil {
		return nil, fmt.Errorf("brokertest: rabbitmq: start epmd: %w", err)
	}
	for i := range cfg.nodes {
		n, err := c.newNode(dir, server, i+1, &cfg)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("brokertest: rabbitmq: %w", err), c.Close())
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.boot(); err != nil {
		return nil, errors.Join(fmt.Errorf("brokertest: rabbitmq: %w\n%s", err, c.Describe()), c.Close())
	}
	return c, nil
}

// prepare writes the Erlang cookie and sets up the cluster's epmd on a free
// port, bound to loopback.
func (c *RabbitMQCluster) prepare(dir, epmd string) error {
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	cookie := make([]byte, 16)
	if _, err := rand.Read(cookie); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(home, ".erlang.cookie"), strings.ToUpper(hex.EncodeToString(cookie)), 0o400); err != nil {
		return err
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		return err
	}
	c.env = append(os.Environ(),
		"HOME="+home,
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(port),
		"RABBITMQ_CONF_ENV_FILE=/dev/null", // not /etc/rabbitmq/rabbitmq-env.conf
		// Neither the nodes nor rabbitmqctl may start an epmd of their own.
		"RABBITMQ_CTL_ERL_ARGS=-start_epmd false",
	)
	c.epmd = &daemon{
		name:  "epmd",
		argv:  []string{epmd, "-port", strconv.Itoa(port)},
		env:   c.env,
		addrs: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
		ready: readyTimeout,
		logs:  new(logBuffer),
	}
	return nil
}

// newNode chooses node i's ports and writes its configuration.
func (c *RabbitMQCluster) newNode(dir, server string, i int, cfg *rabbitConfig) (*rabbitNode, error) {
	free := func() (int, error) { return ports.Free("127.0.0.1") }
	var p [4]int // AMQP, distribution, MQTT, MQTT over TLS
	for j := range p {
		port, err := free()
		if err != nil {
			return nil, err
		}
		p[j] = port
	}
	nodeDir := filepath.Join(dir, fmt.Sprintf("rabbit-%d", i))
	if err := os.Mkdir(nodeDir, 0o700); err != nil {
		return nil, err
	}
	n := &rabbitNode{
		name: fmt.Sprintf("rabbit-%d@localhost", i),
		mqtt: net.JoinHostPort("127.0.0.1", strconv.Itoa(p[2])),
		conf: filepath.Join(nodeDir, "rabbitmq.conf"),
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "# Generated by brokertest.\nlisteners.tcp.default = 127.0.0.1:%d\n", p[0])
	fmt.Fprintf(&conf, "mqtt.listeners.tcp.default = %s\n", n.mqtt)
	conf.WriteString("log.console = true\nlog.console.level = info\nlog.file = false\n")
	if cfg.certs != nil {
		n.tls = net.JoinHostPort("127.0.0.1", strconv.Itoa(p[3]))
		fmt.Fprintf(&conf, "mqtt.listeners.ssl.default = %s\n", n.tls)
		fmt.Fprintf(&conf, "ssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n",
			cfg.certs.CAFile, cfg.certs.ServerCert, cfg.certs.ServerKey)
		conf.WriteString("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
	}
	if cfg.queueType != "" {
		fmt.Fprintf(&conf, "mqtt.durable_queue_type = %s\n", cfg.queueType)
	}
	if cfg.prefetch > 0 {
		fmt.Fprintf(&conf, "mqtt.prefetch = %d\n", cfg.prefetch)
	}
	if err := writeFile(n.conf, conf.String(), 0o600); err != nil {
		return nil, err
	}
	plugins := filepath.Join(nodeDir, "enabled_plugins")
	if err := writeFile(plugins, "[rabbitmq_mqtt].\n", 0o600); err != nil {
		return nil, err
	}
	env := append(c.env[:len(c.env):len(c.env)],
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(p[0]),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(p[1]),
		"RABBITMQ_CONFIG_FILE="+n.conf,
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
		"RABBITMQ_MNESIA_BASE="+filepath.Join(nodeDir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(nodeDir, "log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(nodeDir, "plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(nodeDir, "pid"),
		// Distribution on loopback only, and no epmd of the node's own.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
	)
	n.d = &daemon{name: "rabbitmq node " + n.name, argv: []string{server}, env: env, dir: nodeDir, ready: rabbitmqReady, grace: rabbitmqGrace, logs: new(logBuffer)}
	n.d.addrs = []string{n.mqtt}
	if n.tls != "" {
		n.d.addrs = append(n.d.addrs, n.tls)
	}
	return n, nil
}

// boot starts the nodes at once and joins the second and later ones to the
// first.
func (c *RabbitMQCluster) boot() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.d.start() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := 1; i < len(c.nodes); i++ {
		for _, args := range [][]string{{"stop_app"}, {"join_cluster", c.nodes[0].name}, {"start_app"}} {
			if _, err := c.Ctl(i, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Nodes returns the number of nodes.
func (c *RabbitMQCluster) Nodes() int { return len(c.nodes) }

// NodeName returns the Erlang name of node i (from 0), such as
// "rabbit-1@localhost" for node 0.
func (c *RabbitMQCluster) NodeName(i int) string { return c.nodes[i].name }

// URL returns the plain MQTT address of node i (from 0), such as
// "tcp://127.0.0.1:40123".
func (c *RabbitMQCluster) URL(i int) string { return "tcp://" + c.nodes[i].mqtt }

// TLSURL returns the MQTT-over-TLS address of node i, or "" without
// RabbitMQTLS.
func (c *RabbitMQCluster) TLSURL(i int) string {
	if c.nodes[i].tls == "" {
		return ""
	}
	return "ssl://" + c.nodes[i].tls
}

// Addrs returns the plain MQTT "host:port" of every node, for a load
// balancer in front of them.
func (c *RabbitMQCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.mqtt
	}
	return out
}

// Kill ends node i with SIGKILL, as a crash or a lost machine would; the
// other nodes go on. Start brings it back.
func (c *RabbitMQCluster) Kill(i int) error { return c.nodes[i].d.kill() }

// Stop stops node i cleanly (SIGTERM).
func (c *RabbitMQCluster) Stop(i int) error { return c.nodes[i].d.stop() }

// Start starts a stopped or killed node i again with its data: it rejoins
// the cluster. It returns once its MQTT listener accepts connections.
func (c *RabbitMQCluster) Start(i int) error {
	c.nodes[i].d.logs.mark("start")
	return c.nodes[i].d.start()
}

// Running reports whether node i's process runs.
func (c *RabbitMQCluster) Running(i int) bool { return c.nodes[i].d.running() }

// Ctl runs rabbitmqctl against node i (from 0) and returns its output.
func (c *RabbitMQCluster) Ctl(i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rabbitmqCtlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.ctl, append([]string{"-n", c.nodes[i].name}, args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("rabbitmqctl -n %s %s: %w: %s", c.nodes[i].name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.String(), nil
}

// RabbitMQQueue is one queue as rabbitmqctl list_queues reports it.
type RabbitMQQueue struct {
	Name string
	Type string // "classic" or "quorum"
	// Node is the index of the node the queue lives on (classic) or of its
	// leader (quorum); -1 when that node is down.
	Node int
	// Messages is the number of messages in the queue, ready and
	// unacknowledged; -1 when unknown (its node is down).
	Messages int
}

// Queues lists the cluster's queues, asking node i (a running one). The MQTT
// plugin keeps a persistent session's QoS 1 subscriptions in a queue named
// "mqtt-subscription-{client id}qos1".
func (c *RabbitMQCluster) Queues(i int) ([]RabbitMQQueue, error) {
	out, err := c.Ctl(i, "list_queues", "--quiet", "--no-table-headers", "name", "type", "pid", "leader", "messages")
	if err != nil {
		return nil, err
	}
	var qs []RabbitMQQueue
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(f) != 5 {
			continue
		}
		q := RabbitMQQueue{Name: f[0], Type: strings.TrimPrefix(f[1], "rabbit_"), Node: -1, Messages: -1}
		q.Type = strings.TrimSuffix(q.Type, "_queue")
		home := f[3] // a quorum queue's leader
		if home == "" {
			// A classic queue's process, such as <rabbit-1@localhost.1796302048.1366.0>.
			home, _, _ = strings.Cut(strings.TrimPrefix(f[2], "<"), ".")
		}
		for j, n := range c.nodes {
			if n.name == home && n.d.running() {
				q.Node = j
			}
		}
		if m, err := strconv.Atoi(f[4]); err == nil {
			q.Messages = m
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// Describe returns the nodes' configuration and logs, for failure messages.
func (c *RabbitMQCluster) Describe() string {
	var b strings.Builder
	for _, n := range c.nodes {
		conf, _ := os.ReadFile(n.conf)
		fmt.Fprintf(&b, "rabbitmq node %s config %s:\n%s\nlog:\n%s\n", n.name, n.conf, conf, n.d.logs)
	}
	return b.String()
}

// Close stops every node and the cluster's epmd. It returns what went wrong
// stopping them; stopping a stopped cluster does nothing.
func (c *RabbitMQCluster) Close() error {
	errs := make([]error, len(c.nodes)+1)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.d.stop() })
	}
	wg.Wait()
	errs[len(c.nodes)] = c.epmd.stop()
	return errors.Join(errs...)
}
