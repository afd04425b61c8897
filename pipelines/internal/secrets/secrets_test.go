package secrets_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/secrets"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/secrets/secretstest"
)

func TestAccess(t *testing.T) {
	const name = "projects/my-project/secrets/mqtt-password/versions/3"
	secretstest.Start(t, map[string]string{name: "s3cret"})
	ctx := context.Background()

	pw, err := secrets.Access(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", pw)

	_, err = secrets.Access(ctx, "projects/my-project/secrets/missing/versions/1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "projects/my-project/secrets/missing/versions/1")
	assert.Contains(t, err.Error(), "NotFound")

	_, err = secrets.Access(ctx, "mqtt-password")
	require.ErrorContains(t, err, "is not a secret version")
}
