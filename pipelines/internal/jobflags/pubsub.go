package jobflags

import (
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/mqttbeam/mqttbeam/internal/resname"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
)

// PubSubTopic checks a projects/PROJECT/topics/TOPIC flag value; empty is
// allowed.
func PubSubTopic(name, v string) error {
	if v == "" || resname.TopicRE.MatchString(v) {
		return nil
	}
	return Errorf(name, "%q is not a Pub/Sub topic as projects/PROJECT/topics/TOPIC", v)
}

// PubSubSubscription checks a projects/PROJECT/subscriptions/SUBSCRIPTION
// flag value; empty is allowed.
func PubSubSubscription(name, v string) error {
	if v == "" || resname.SubscriptionRE.MatchString(v) {
		return nil
	}
	return Errorf(name, "%q is not a Pub/Sub subscription as projects/PROJECT/subscriptions/SUBSCRIPTION", v)
}

// LocalEndpoint checks a host:port flag that points a client at a local
// server (an emulator, a test server): plaintext and without credentials, so
// local runners only. Empty is allowed, and so is "embedded" (an in-process
// server the job starts).
func LocalEndpoint(name, v string, local bool) error {
	if v == "" {
		return nil
	}
	if !local {
		return Errorf(name, "is for local runs only (plaintext, no credentials)")
	}
	if v == Embedded {
		return nil
	}
	if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
		return Errorf(name, "%q is not host:port", v)
	}
	return nil
}

// placeholderRE is a {field} placeholder of a topic template.
var placeholderRE = regexp.MustCompile(`\{[^{}/+#]*\}`)

// TopicTemplate checks a topic template flag such as
// "devices/{device_id}/commands": every {field} filled in must give a valid
// topic to publish to. With fields, only those placeholders are allowed.
func TopicTemplate(name, tmpl string, fields ...string) error {
	for _, p := range placeholderRE.FindAllString(tmpl, -1) {
		field := p[1 : len(p)-1]
		if field == "" {
			return Errorf(name, "%q has an empty placeholder {}", tmpl)
		}
		if len(fields) > 0 && !slices.Contains(fields, field) {
			return Errorf(name, "%q: placeholder %s is not one of {%s}", tmpl, p, strings.Join(fields, "}, {"))
		}
	}
	filled := placeholderRE.ReplaceAllString(tmpl, "x")
	if strings.ContainsAny(filled, "{}") {
		return Errorf(name, "%q has an unbalanced or invalid placeholder: want {field}", tmpl)
	}
	if err := mqttio.ValidateTopic(filled); err != nil {
		return Errorf(name, "%q does not make a valid topic: %v", tmpl, err)
	}
	return nil
}

// DeviceTopic checks a template that finds a device id in the topics a job
// reads, such as "devices/{device_id}/#": a topic filter ('+' and a last '#'
// allowed) with {device_id} exactly once, as a whole level.
func DeviceTopic(name, tmpl string) error {
	levels := strings.Split(tmpl, "/")
	n := 0
	for i, l := range levels {
		if l == "{device_id}" {
			n++
			levels[i] = "+"
		}
	}
	if n != 1 {
		return Errorf(name, "%q must have {device_id} exactly once as a whole level", tmpl)
	}
	filter := strings.Join(levels, "/")
	if strings.ContainsAny(filter, "{}") {
		return Errorf(name, "%q: {device_id} is the only placeholder", tmpl)
	}
	if err := mqttio.ValidateFilter(filter); err != nil {
		return Errorf(name, "%q: %v", tmpl, err)
	}
	return nil
}

// PubSubEndpointUsage is the usage of a job's --pubsub_endpoint flag.
const PubSubEndpointUsage = `Local runs only: "embedded" (an in-process Pub/Sub server with a simulated peer; the default of a local run given no Pub/Sub topic or subscription), or host:port of a Pub/Sub emulator or pstest (plaintext, no credentials)`

// LocalPubSub fills in a local run's Pub/Sub defaults, so that a job runs
// with no flags: with neither *endpoint (--pubsub_endpoint) nor *name (the
// job's Pub/Sub topic or subscription) given, the endpoint is "embedded"
// (an in-process server the job starts); with the embedded endpoint and no
// name, the name is def.
func LocalPubSub(local bool, endpoint, name *string, def string) {
	if local && *endpoint == "" && *name == "" {
		*endpoint = Embedded
	}
	if *endpoint == Embedded && *name == "" {
		*name = def
	}
}

// SubscriptionTopic is the topic of the embedded Pub/Sub server that the
// subscription projects/P/subscriptions/S reads: projects/P/topics/S.
func SubscriptionTopic(subscription string) string {
	return strings.Replace(subscription, "/subscriptions/", "/topics/", 1)
}

// TopicSubscription is the subscription name of the embedded Pub/Sub
// server for topic projects/P/topics/T: projects/P/subscriptions/T.
func TopicSubscription(topic string) string {
	return strings.Replace(topic, "/topics/", "/subscriptions/", 1)
}

// PubSubReadOptions are the pubsubio.Read options of a job that reads
// Pub/Sub with readers streaming pulls, through endpoint when it is not
// empty, within c's read limits (--max_records, --duration).
func (c *Control) PubSubReadOptions(endpoint string, readers int) []pubsubio.ReadOption {
	opts := []pubsubio.ReadOption{pubsubio.Readers(readers)}
	if endpoint != "" {
		opts = append(opts, pubsubio.Endpoint(endpoint))
	}
	if c.MaxRecords > 0 {
		opts = append(opts, pubsubio.MaxRecords(c.MaxRecords))
	}
	if c.Duration > 0 {
		opts = append(opts, pubsubio.MaxReadTime(c.Duration))
	}
	return opts
}
