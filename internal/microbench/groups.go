package microbench

import (
	"context"
	"fmt"
	"time"

	"github.com/raygo/raygo/ray"
)

// groupsPerRound is how many placement groups one round of
// placement_group_create/removal creates, waits for and removes (Ray's
// NUM_PGS).
const groupsPerRound = 100

// placementGroupCreateRemoval is placement_group_create/removal: as in
// Ray's ray_perf, create 100 groups of one tiny bundle, wait for each,
// then remove them all; groups per second. Ray's bundle asks 0.001 of a
// custom resource; this one asks 0.001 CPU, which every node has.
func placementGroupCreateRemoval(ctx context.Context, cfg Config) (float64, error) {
	bundles := []ray.Bundle{{"CPU": 0.001}}
	pgs := make([]*ray.PlacementGroupHandle, groupsPerRound)
	return measure(ctx, cfg, groupsPerRound, func(ctx context.Context) error {
		for i := range pgs {
			pg, err := ray.PlacementGroup(ctx, bundles, ray.PlacementPack)
			if err != nil {
				return err
			}
			pgs[i] = pg
		}
		for _, pg := range pgs {
			ok, err := pg.Wait(ctx, 30*time.Second)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("microbench: placement group %s not created within 30 s", pg.ID())
			}
		}
		for _, pg := range pgs {
			if err := ray.RemovePlacementGroup(ctx, pg); err != nil {
				return err
			}
		}
		return nil
	})
}
