package ray

import (
	"context"

	"github.com/raygo/raygo/internal/apiclient"
)

// StateClientForTest is the HTTP API client the state functions use.
func StateClientForTest(ctx context.Context) (*apiclient.Client, error) { return stateClient(ctx) }
