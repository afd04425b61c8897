package brokertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/certs"
)

func TestMosquittoOptionErrors(t *testing.T) {
	missing := t.TempDir() + "/missing.pem"
	for _, tc := range []struct {
		opt  MosquittoOption
		want string
	}{
		{MosquittoTLS(certs.Certs{CAFile: missing, ServerCert: missing, ServerKey: missing}), "MosquittoTLS"},
		{MosquittoAuth("", "p"), "MosquittoAuth(\"\")"},
		{MosquittoAuth("a:b", "p"), "MosquittoAuth(\"a:b\")"},
		{MosquittoAuth("a", ""), "MosquittoAuth: password"},
		{MosquittoMaxInflight(-1), "MosquittoMaxInflight(-1)"},
		{MosquittoMaxInflight(1 << 16), "MosquittoMaxInflight(65536)"},
		{MosquittoMaxQueued(-1), "MosquittoMaxQueued(-1)"},
	} {
		cfg := mosquittoConfig{}
		require.ErrorContains(t, tc.opt(&cfg), tc.want)
	}
}
