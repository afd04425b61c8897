package secrets

import (
	"context"
	"net"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeSecretManager serves AccessSecretVersion from a map.
type fakeSecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	secrets map[string]string
}

func (f *fakeSecretManager) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	v, ok := f.secrets[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", req.GetName())
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: req.GetName(), Payload: &secretmanagerpb.SecretPayload{Data: []byte(v)}}, nil
}

func startFake(t *testing.T, secrets map[string]string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, &fakeSecretManager{secrets: secrets})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	t.Setenv(EndpointEnv, lis.Addr().String())
}

func TestPassword(t *testing.T) {
	const name = "projects/my-project/secrets/mqtt-password/versions/3"
	startFake(t, map[string]string{name: "s3cret"})
	ctx := context.Background()

	pw, err := Password(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", pw)

	_, err = Password(ctx, "projects/my-project/secrets/missing/versions/1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "projects/my-project/secrets/missing/versions/1")
	assert.Contains(t, err.Error(), "NotFound")

	_, err = Password(ctx, "mqtt-password")
	require.ErrorContains(t, err, "is not a secret version")
}
