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

func TestMosquittoMoreOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  MosquittoOption
		want string
	}{
		{MosquittoSettings("listener 1883"), "no listener"},
		{MosquittoSettings("a\nb"), "one setting per line"},
		{MosquittoACL(), "no lines"},
		{MosquittoACL("topic a\ntopic b"), "one rule per line"},
	} {
		cfg := mosquittoConfig{}
		require.ErrorContains(t, tc.opt(&cfg), tc.want)
	}
}
