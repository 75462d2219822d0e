package objmgr

// The deciding parts of the object manager: which queued pulls to start
// under the byte budget, how an object is cut into chunks, and which
// holder serves the next chunk. They hold no locks and do no I/O; the
// Manager calls them under its own lock and does the transfers.

// admit returns how many pulls at the head of the queue (sizes in queue
// order) start now, given the bytes of the pulls already running and the
// budget. Pulls start in order while they fit; the first that does not
// fit stops the scan, so a large pull is not starved by smaller ones
// behind it. When nothing runs, the head starts even if it alone exceeds
// the budget: an object larger than the budget must still be pullable
// (Ray's pull manager does the same).
func admit(queue []int64, active, budget int64) int {
	n := 0
	for _, size := range queue {
		if active > 0 && active+size > budget {
			break
		}
		active += size
		n++
	}
	return n
}

// chunk is one piece of an object: [off, off+n).
type chunk struct{ off, n int64 }

// chunks cuts size bytes into pieces of at most per bytes. An empty
// object has no chunks.
func chunks(size, per int64) []chunk {
	if per <= 0 {
		per = DefaultChunkBytes
	}
	out := make([]chunk, 0, (size+per-1)/per)
	for off := int64(0); off < size; off += per {
		out = append(out, chunk{off, min(per, size-off)})
	}
	return out
}

// holder is what the chooser knows about one node holding a copy.
type holder struct {
	addr     string
	inFlight int   // chunk reads outstanding to it
	served   int   // chunk reads it answered
	err      error // non-nil: it failed; no more chunks go to it
}

// pickHolder returns the index of the holder the next chunk read goes
// to: among those that have not failed, the one with the fewest reads in
// flight, ties broken by the fewest served and then by rotating from
// start (so pullers on different nodes, which start at different
// offsets, do not all begin with the same holder). It returns -1 when
// every holder has failed.
func pickHolder(hs []holder, start int) int {
	best := -1
	for k := range hs {
		i := (start + k) % len(hs)
		h := &hs[i]
		if h.err != nil {
			continue
		}
		if best < 0 || h.inFlight < hs[best].inFlight ||
			(h.inFlight == hs[best].inFlight && h.served < hs[best].served) {
			best = i
		}
	}
	return best
}

// mergeHolders appends to hs the addresses of list that it does not have
// yet, skipping self (this node), and reports how many it added.
func mergeHolders(hs []holder, list []string, self string) ([]holder, int) {
	added := 0
	for _, a := range list {
		if a == "" || a == self {
			continue
		}
		dup := false
		for _, h := range hs {
			if h.addr == a {
				dup = true
				break
			}
		}
		if !dup {
			hs = append(hs, holder{addr: a})
			added++
		}
	}
	return hs, added
}
