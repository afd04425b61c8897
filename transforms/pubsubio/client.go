package pubsubio

import (
	"context"
	"fmt"
	"regexp"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Resource names as Pub/Sub defines them: a project id or number, then a
// topic or subscription id of 3 to 255 characters starting with a letter.
var (
	topicName        = regexp.MustCompile(`^projects/([a-z0-9][a-z0-9.:-]{0,62})/topics/([A-Za-z][A-Za-z0-9._~+%-]{2,254})$`)
	subscriptionName = regexp.MustCompile(`^projects/([a-z0-9][a-z0-9.:-]{0,62})/subscriptions/([A-Za-z][A-Za-z0-9._~+%-]{2,254})$`)
)

// parseName checks a full resource name against re and returns its project.
// what names the argument in the error ("topic", "subscription").
func parseName(re *regexp.Regexp, what, name string) (project string, err error) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return "", fmt.Errorf("pubsubio: %s %q: want projects/PROJECT/%ss/ID", what, name, what)
	}
	return m[1], nil
}

// newClient connects to Pub/Sub for project: to Google Cloud with TLS and
// the application default credentials, or, when cfg has an Endpoint, to
// that address over plaintext gRPC without credentials.
func newClient(ctx context.Context, project string, cfg *config) (*pubsub.Client, error) {
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts,
			option.WithEndpoint(cfg.Endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsubio: connecting to Pub/Sub for project %q: %w", project, err)
	}
	return c, nil
}
