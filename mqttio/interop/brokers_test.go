package interop

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

// caps is what a broker does, as the checks measured it. A check asserts
// the broker's behaviour on either side of each capability.
type caps struct {
	// maxQoS is the highest QoS the broker grants a subscription.
	maxQoS byte
	// shared: $share/{group}/{filter} subscriptions balance messages over
	// the group; sharedNote says what a broker without them does instead.
	shared     bool
	sharedNote string
	// retainedWildcard: retained messages are sent to subscriptions with
	// wildcards too, not only to exact topics.
	retainedWildcard bool
	// retainedClusterWide: a retained message published on one node is sent
	// to subscribers of another (clusters only).
	retainedClusterWide bool
	// inflight is the window of unacknowledged QoS 1 messages the broker
	// holds an MQTT 3.1.1 reader to (0: none, or not enforced).
	inflight int
	// redelivers: a persistent session keeps unacknowledged QoS 1 messages
	// across a reader's crash without losing any; false for a broker known
	// to lose some, with lossNote saying why.
	redelivers bool
	lossNote   string
	// dotSplitsLevel: a '.' in a topic level splits it in two for
	// matching (RabbitMQ maps topics to AMQP routing keys), so '+' does not
	// match a level such as "dev.1".
	dotSplitsLevel bool
	// windowHoldsQoS0: the inflight window holds back QoS 0 messages too.
	windowHoldsQoS0 bool
	// v5 is what the broker does for MQTT 5 clients, nil for a broker that
	// does not speak MQTT 5; v5Refusal then says how it answers an MQTT 5
	// CONNECT, and the error mqttio fails with names ProtocolVersion(3).
	v5        *caps5
	v5Refusal string
}

// caps5 is what a broker does for MQTT 5 clients where MQTT 5 lets it
// differ from 3.1.1. The other capabilities hold at both versions.
type caps5 struct {
	// receiveMaximum is the Receive Maximum of the broker's CONNACK, the
	// window an mqttio reader without InflightWindow checkpoints on (65535:
	// none announced).
	receiveMaximum int
	// inflight is the window of unacknowledged QoS 1 messages the broker
	// holds a client to that announces no Receive Maximum (0: none).
	inflight int
	// ignoresReceiveMaximum: the broker holds clients to inflight whatever
	// Receive Maximum they announce.
	ignoresReceiveMaximum bool
	// noShared: the CONNACK says Shared Subscription Available 0; an mqttio
	// read with Readers(n>1) then fails at once, naming it (paho.golang
	// refuses such a SUBSCRIBE before sending it).
	noShared bool
}

// target is a running broker as the checks see it.
type target struct {
	name   string
	url    string // where readers connect
	pubURL string // where publishers connect: another node of a cluster
	tlsURL string
	// user and password are sent by every client: ejabberd needs a user
	// name, RabbitMQ accepts its guest user on loopback, the others any.
	user, password string
	// proto is the MQTT protocol level of the check: 4 (MQTT 3.1.1) or 5.
	proto int
	caps
}

// window returns the inflight window of the checks' mqttio readers. At
// MQTT 3.1.1 the checks give it as InflightWindow: the broker's window, or
// mqttio's default of 20 when the broker enforces none. At MQTT 5 they give
// none, as users need not: the reader announces 1000 (MaxBuffered) and
// checkpoints on the broker's Receive Maximum when lower; the window that
// matters is then the smallest of these and the one a broker holds every
// client to whatever it announces (ejabberd: 1).
func (t *target) window() int {
	if t.proto == 5 {
		w := min(1000, t.v5.receiveMaximum)
		if t.v5.ignoresReceiveMaximum {
			w = min(w, t.v5.inflight)
		}
		return w
	}
	if t.inflight > 0 {
		return t.inflight
	}
	return 20
}

// protocols returns the MQTT protocol levels the checks run at: 4 (MQTT
// 3.1.1), and 5 where the broker speaks MQTT 5.
func (t *target) protocols() []int {
	if t.v5 != nil {
		return []int{4, 5}
	}
	return []int{4}
}

// at returns t for the checks at protocol level proto.
func (t target) at(proto int) *target {
	t.proto = proto
	return &t
}

// version is mqttio's ProtocolVersion of t's protocol level.
func (t *target) version() int {
	if t.proto == 5 {
		return 5
	}
	return 3
}

// readOptions returns the options every read of the checks has: t's
// credentials and protocol version, and at MQTT 3.1.1 the inflight window,
// followed by opts.
func (t *target) readOptions(opts ...mqttio.ReadOption) []mqttio.ReadOption {
	base := []mqttio.ReadOption{mqttio.Credentials(t.user, t.password), mqttio.ProtocolVersion(t.version())}
	if t.proto != 5 {
		base = append(base, mqttio.InflightWindow(t.window()))
	}
	return append(base, opts...)
}

// broker is a broker of the matrix, started on first use.
type broker struct {
	name  string
	caps  caps
	start func(dir string, c certs.Certs) (*target, *server, error)

	once sync.Once
	tg   *target
	srv  *server
	dir  string
	err  error
}

// server is what the package stops when its tests end.
type server struct {
	close    func() error
	describe func() string
}

var (
	pki     certs.Certs // generated once in TestMain
	brokers = []*broker{
		{name: "embedded", caps: caps{maxQoS: 2, shared: true, retainedWildcard: true,
			lossNote: "mochi-mqtt v2.7.9 can lose a QoS 1 message in flight to a subscriber whose connection dies (README, known upstream issues)",
			v5:       &caps5{receiveMaximum: 1024}},
			start: startEmbedded},
		{name: "mosquitto", caps: caps{maxQoS: 2, shared: true, retainedWildcard: true, redelivers: true, inflight: mosquittoInflight,
			v5: &caps5{receiveMaximum: mosquittoInflight, inflight: mosquittoInflight}}, start: startMosquitto},
		{name: "rabbitmq", caps: caps{maxQoS: 1, redelivers: true, inflight: rabbitPrefetch, dotSplitsLevel: true,
			sharedNote: "RabbitMQ 3.10 takes $share/... as a plain filter, which matches no topic",
			v5Refusal:  "RabbitMQ 3.10 closes the connection on an MQTT 5 CONNECT"}, start: startRabbitMQ},
		{name: "ejabberd", caps: caps{maxQoS: 2, retainedWildcard: true, redelivers: true, inflight: 1, windowHoldsQoS0: true,
			sharedNote: "ejabberd 23.01 closes the connection on a $share/... SUBSCRIBE; mqttio reconnects with backoff",
			v5:         &caps5{receiveMaximum: 65535, inflight: 1, ignoresReceiveMaximum: true, noShared: true}}, start: startEjabberd},
		{name: "aedes", caps: caps{maxQoS: 2, retainedWildcard: true, redelivers: true,
			sharedNote: "aedes 1.2.0 takes $share/... as a plain filter, which matches no topic",
			v5Refusal:  "aedes 1.2.0 answers an MQTT 5 CONNECT with the MQTT 3.1.1 CONNACK code 1, unacceptable protocol version"}, start: startAedes},
	}
)

const (
	// mosquittoInflight is the max_inflight_messages of the Mosquitto under
	// test, small so that the inflight check means something.
	mosquittoInflight = 5
	// rabbitPrefetch is RabbitMQ's mqtt.prefetch default, which it enforces.
	rabbitPrefetch = 10
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	dir, err := os.MkdirTemp("", "mqttbeam-interop-")
	if err == nil {
		pki, err = certs.GenerateCerts(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	code := ptest.MainRetWithDefault(m, "prism")
	for _, b := range brokers {
		if b.srv == nil {
			continue
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- %s\n%s\n", b.name, b.srv.describe())
		}
		if err := b.srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "interop: stop %s: %v\n", b.name, err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// get returns the broker's target, starting the broker on first use. It
// skips t when the broker is not installed (fails with
// MQTTBEAM_REQUIRE_BROKERS=1) and fails it when the broker did not start.
func (b *broker) get(t *testing.T) *target {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "mqttbeam-interop-"+b.name+"-")
		if b.err == nil {
			b.tg, b.srv, b.err = b.start(b.dir, pki)
		}
		if b.tg != nil {
			b.tg.name, b.tg.caps = b.name, b.caps
			if b.tg.pubURL == "" {
				b.tg.pubURL = b.tg.url
			}
		}
		if b.srv != nil {
			close := b.srv.close
			b.srv.close = func() error { defer os.RemoveAll(b.dir); return close() }
		}
	})
	if b.err != nil {
		brokertest.SkipOrFail(t, fmt.Errorf("%s: %w", b.name, b.err))
	}
	return b.tg
}

// forEach runs check as a subtest per broker and protocol level.
func forEach(t *testing.T, check func(t *testing.T, tg *target)) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			tg := b.get(t)
			for _, p := range tg.protocols() {
				t.Run(fmt.Sprintf("mqtt%d", p), func(t *testing.T) { check(t, tg.at(p)) })
			}
		})
	}
}

func startEmbedded(_ string, c certs.Certs) (*target, *server, error) {
	b, err := embeddedbroker.Start(embeddedbroker.TLS(c.ServerCert, c.ServerKey))
	if err != nil {
		return nil, nil, err
	}
	return &target{url: b.URL(), tlsURL: b.TLSURL(), user: "reader", password: "any"},
		&server{close: b.Close, describe: func() string { return "embedded broker" }}, nil
}

func startMosquitto(dir string, c certs.Certs) (*target, *server, error) {
	m, err := brokertest.StartMosquitto(dir, brokertest.MosquittoTLS(c), brokertest.MosquittoMaxInflight(mosquittoInflight))
	if err != nil {
		return nil, nil, err
	}
	return &target{url: m.URL(), tlsURL: m.TLSURL(), user: "reader", password: "any"},
		&server{close: m.Close, describe: m.Describe}, nil
}

// startRabbitMQ starts a three-node cluster: readers connect to the first
// node, publishers to the second, so every check also crosses the cluster.
func startRabbitMQ(dir string, c certs.Certs) (*target, *server, error) {
	r, err := brokertest.StartRabbitMQ(dir, brokertest.RabbitMQNodes(3), brokertest.RabbitMQTLS(c))
	if err != nil {
		return nil, nil, err
	}
	return &target{url: r.URL(0), pubURL: r.URL(1), tlsURL: r.TLSURL(0), user: "guest", password: "guest"},
		&server{close: r.Close, describe: r.Describe}, nil
}

func startEjabberd(dir string, c certs.Certs) (*target, *server, error) {
	e, err := brokertest.StartEjabberd(dir, brokertest.EjabberdTLS(c))
	if err != nil {
		return nil, nil, err
	}
	return &target{url: e.URL(), tlsURL: e.TLSURL(), user: "reader", password: "any"},
		&server{close: e.Close, describe: e.Describe}, nil
}

func startAedes(dir string, c certs.Certs) (*target, *server, error) {
	a, err := brokertest.StartAedes(dir, brokertest.AedesTLS(c))
	if err != nil {
		return nil, nil, err
	}
	return &target{url: a.URL(), tlsURL: a.TLSURL(), user: "reader", password: "any"},
		&server{close: a.Close, describe: a.Describe}, nil
}

// id returns a client id for t that is unique in the package and safe on
// every broker (RabbitMQ names queues after it).
func id(t *testing.T, suffix string) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "", "+", "", ".", "-")
	return r.Replace(t.Name()) + suffix
}
