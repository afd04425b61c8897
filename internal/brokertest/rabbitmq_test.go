package brokertest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
)

// TestRabbitMQCluster starts a two-node cluster with TLS: a message
// published on one node reaches a subscriber of the other over TLS, a
// persistent session's queue is listed on the node it began on, and a killed
// node comes back into the cluster.
func TestRabbitMQCluster(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	r := brokertest.RabbitMQ(t, brokertest.RabbitMQNodes(2), brokertest.RabbitMQTLS(c))
	require.Equal(t, 2, r.Nodes())
	require.Regexp(t, `^ssl://127\.0\.0\.1:\d+$`, r.TLSURL(1))

	status, err := r.Ctl(0, "cluster_status")
	require.NoError(t, err)
	require.Contains(t, status, r.NodeName(1), "node 2 joined node 1")

	trusting, err := certs.ClientTLSConfig(c.CAFile, "", "")
	require.NoError(t, err)
	sub := brokertest.ClientOptions(r.TLSURL(1), "sub").SetCleanSession(false).SetTLSConfig(trusting)
	pubSub(t, sub, publisher(r.URL(0)))

	queues, err := r.Queues(0)
	require.NoError(t, err)
	require.Contains(t, queues, brokertest.RabbitMQQueue{Name: "mqtt-subscription-subqos1", Type: "classic", Node: 1, Messages: 0})

	require.NoError(t, r.Kill(1))
	require.False(t, r.Running(1))
	queues, err = r.Queues(0)
	require.NoError(t, err)
	require.Contains(t, queues, brokertest.RabbitMQQueue{Name: "mqtt-subscription-subqos1", Type: "classic", Node: -1, Messages: -1}, "the queue is down with its node")
	require.NoError(t, r.Start(1))
	pubSub(t, brokertest.ClientOptions(r.URL(1), "sub2"), publisher(r.URL(0)))
}
