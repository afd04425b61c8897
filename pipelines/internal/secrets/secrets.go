// Package secrets reads secrets from Google Secret Manager on the workers,
// for mqttio.CredentialsFrom and mqttio.TLSClientCertFrom: a job is given
// the name of a secret version (--password_secret, --tls_key_secret), never
// the password or the key.
package secrets

import (
	"context"
	"fmt"
	"os"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mqttbeam/mqttbeam/internal/resname"
)

func init() {
	register.Function2x2(Access)
}

// EndpointEnv, when set to host:port, points Access at a local Secret
// Manager (an emulator or a test server) over plaintext gRPC, without
// credentials.
const EndpointEnv = "MQTTBEAM_SECRETMANAGER_ENDPOINT"

// Access returns the payload of the Secret Manager secret version name
// (projects/P/secrets/S/versions/V, V a number or "latest"), read with the
// worker's default credentials (on Dataflow: the worker service account,
// which needs roles/secretmanager.secretAccessor on the secret).
func Access(ctx context.Context, name string) (string, error) {
	if !resname.SecretVersionRE.MatchString(name) {
		return "", fmt.Errorf("secrets: %q is not a secret version (projects/P/secrets/S/versions/V)", name)
	}
	var opts []option.ClientOption
	if ep := os.Getenv(EndpointEnv); ep != "" {
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	client, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return "", fmt.Errorf("secrets: connecting to Secret Manager: %w", err)
	}
	defer client.Close()
	resp, err := client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name})
	if err != nil {
		return "", fmt.Errorf("secrets: reading %s: %w", name, err)
	}
	return string(resp.GetPayload().GetData()), nil
}
