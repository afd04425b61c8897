// Package resname holds the forms of the Google Cloud resource names the
// project takes: BigQuery tables as the jobs' flags give them, Pub/Sub
// topics and subscriptions, Secret Manager secret versions. Each is a
// regular expression that Go's regexp and POSIX ERE read alike, so that
// the libraries and the jobs validate names with the same expression that
// the flex templates' metadata gives Dataflow.
package resname

import "regexp"

const (
	// Table is PROJECT:DATASET.TABLE (a project id may carry a domain,
	// "example.com:project").
	Table = `^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]:[A-Za-z0-9_]+\.[A-Za-z0-9_-]+$`
	// Topic is a Pub/Sub topic, projects/PROJECT/topics/TOPIC: a project id
	// or number, then an id of 3 to 255 characters starting with a letter.
	Topic = `^projects/[a-z0-9][a-z0-9.:-]{0,62}/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`
	// Subscription is a Pub/Sub subscription,
	// projects/PROJECT/subscriptions/SUBSCRIPTION, ids as in Topic.
	Subscription = `^projects/[a-z0-9][a-z0-9.:-]{0,62}/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`
	// SecretVersion is a Secret Manager secret version,
	// projects/PROJECT/secrets/SECRET/versions/VERSION.
	SecretVersion = `^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`
)

// The compiled forms.
var (
	TableRE         = regexp.MustCompile(Table)
	TopicRE         = regexp.MustCompile(Topic)
	SubscriptionRE  = regexp.MustCompile(Subscription)
	SecretVersionRE = regexp.MustCompile(SecretVersion)
)
