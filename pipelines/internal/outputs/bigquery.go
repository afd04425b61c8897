package outputs

import (
	"fmt"
	"strings"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
)

// EmbeddedBigQuery is the --bigquery_endpoint value that runs the local
// BigQuery test server in the process.
const EmbeddedBigQuery = "embedded"

// BigQueryEndpoint turns a --bigquery_endpoint value into the sink's
// Endpoint option: "embedded" starts the in-memory BigQuery server of
// internal/bqtest (returned, for the caller to report on and close), and
// "REST_URL,GRPC_HOST:PORT" points at a server already running. Both are
// for local runs: no credentials, plaintext gRPC.
func BigQueryEndpoint(value string) (bigqueryio.Option, *bqtest.Server, error) {
	if value == EmbeddedBigQuery {
		srv, err := bqtest.Start()
		if err != nil {
			return nil, nil, fmt.Errorf("starting the embedded BigQuery server: %w", err)
		}
		return bigqueryio.Endpoint(srv.RESTURL(), srv.GRPCAddr()), srv, nil
	}
	rest, grpc, ok := strings.Cut(value, ",")
	if !ok || rest == "" || grpc == "" {
		return nil, nil, fmt.Errorf("%q is neither %q nor REST_URL,GRPC_HOST:PORT", value, EmbeddedBigQuery)
	}
	return bigqueryio.Endpoint(rest, grpc), nil, nil
}
