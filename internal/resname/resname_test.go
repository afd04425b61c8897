package resname

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestForms(t *testing.T) {
	for _, tc := range []struct {
		re        *regexp.Regexp
		good, bad []string
	}{
		{TableRE, []string{"my-project:telemetry.aggregates", "example.com:my-project:ds.t_1"}, []string{"ds.table", "my-project.ds.table", "P:ds.t", "my-project:ds"}},
		{TopicRE, []string{"projects/my-project/topics/telemetry", "projects/123/topics/t-1.x"}, []string{"telemetry", "projects/p/topics/", "projects/p/subscriptions/telemetry", "projects/P/topics/t1"}},
		{SubscriptionRE, []string{"projects/my-project/subscriptions/telemetry-job"}, []string{"sub", "projects/p/topics/telemetry", "projects/p/subscriptions/x"}},
		{SecretVersionRE, []string{"projects/p/secrets/mqtt/versions/latest", "projects/1/secrets/s/versions/3"}, []string{"projects/p/secrets/mqtt", "mqtt-password", "projects/p/secrets/s/versions/1/x"}},
	} {
		for _, g := range tc.good {
			assert.True(t, tc.re.MatchString(g), "%s should match %q", tc.re, g)
		}
		for _, b := range tc.bad {
			assert.False(t, tc.re.MatchString(b), "%s should not match %q", tc.re, b)
		}
		// The templates' metadata gives Dataflow the same expressions.
		_, err := regexp.CompilePOSIX(tc.re.String())
		assert.NoError(t, err, "%s is not POSIX ERE", tc.re)
	}
}
