//go:build !windows

package ray

import (
	"context"

	"github.com/raygo/raygo/internal/pb"
)

// ObjectCountForTest reports how many objects the driver's core worker tracks.
func ObjectCountForTest() int {
	cw, err := current()
	if err != nil {
		return -1
	}
	return cw.ObjectCount()
}

// StoreObjectsForTest reports the number of objects in the local node's store.
func StoreObjectsForTest() int64 {
	cw, err := current()
	if err != nil {
		return -1
	}
	st, err := cw.Raylet().NodeStats(context.Background(), &pb.NodeStatsRequest{})
	if err != nil {
		return -1
	}
	return st.GetStoreObjects()
}

// SessionDirForTest returns the embedded cluster's session directory.
func SessionDirForTest() string {
	global.mu.Lock()
	defer global.mu.Unlock()
	return string(global.session)
}

// StoreStatsForTest reports the local node's store use.
func StoreStatsForTest() *pb.StoreStats {
	cw, err := current()
	if err != nil {
		return nil
	}
	st, err := cw.Raylet().NodeStats(context.Background(), &pb.NodeStatsRequest{Largest: 5})
	if err != nil {
		return nil
	}
	return st.GetStore()
}
