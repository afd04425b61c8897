package pubsubio

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// parseName checks a full resource name against re (resname.TopicRE or
// resname.SubscriptionRE) and returns its project. what names the argument
// in the error ("topic", "subscription").
func parseName(re *regexp.Regexp, what, name string) (project string, err error) {
	if !re.MatchString(name) {
		return "", fmt.Errorf("pubsubio: %s %q: want projects/PROJECT/%ss/ID", what, name, what)
	}
	return strings.Split(name, "/")[1], nil
}

// newClient connects to Pub/Sub for project: to Google Cloud with TLS and
// the application default credentials, or, when cfg has an Endpoint, to
// that address over plaintext gRPC without credentials.
func newClient(ctx context.Context, project string, cfg *clientConfig) (*pubsub.Client, error) {
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
