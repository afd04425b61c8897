// Package secretstest serves Secret Manager's AccessSecretVersion from a map,
// for tests of code that reads secrets through internal/secrets.
package secretstest

import (
	"context"
	"net"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/secrets"
)

// Start serves versions (secret version name -> payload) on a free port
// for the rest of the test and points internal/secrets at it
// (secrets.EndpointEnv). A name it does not hold is NotFound, as in Secret
// Manager.
func Start(t testing.TB, versions map[string]string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("secretstest: %v", err)
	}
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, &server{versions: versions})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	t.Setenv(secrets.EndpointEnv, lis.Addr().String())
}

type server struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	versions map[string]string
}

func (s *server) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	v, ok := s.versions[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", req.GetName())
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: req.GetName(), Payload: &secretmanagerpb.SecretPayload{Data: []byte(v)}}, nil
}
