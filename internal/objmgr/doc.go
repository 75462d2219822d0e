// Package objmgr is a node's object manager: it makes objects that live
// on other nodes local, the way Ray's pull manager and object manager do.
//
// A process that needs an object its node lacks asks its node daemon
// (NodeDaemon.PullObject); the daemon's Manager
//
//   - merges concurrent requests for one object on the node into one
//     pull (later requesters wait for the same result);
//   - admits pulls in arrival order while the bytes being pulled stay
//     within a budget (Config.BudgetBytes, Ray's "num bytes being
//     pulled" bound; the node daemon gives 80% of its store), so a storm
//     of pulls queues instead of filling the store; one pull larger than
//     the budget runs alone;
//   - registers the pull with the object's owner, whose object directory
//     (internal/coreworker/objdir) answers with every node holding a copy
//     and every node that began pulling it earlier, adds the hints it was
//     given, and reads the object in chunks (Config.ChunkBytes, 8 MiB)
//     with several in flight (Config.ChunksInFlight, 8), each sent to the
//     holder with the fewest reads outstanding, so the reads spread over
//     all holders and a slow holder gets fewer;
//   - moves a failed holder's chunks to the others, asks the owner again
//     when every holder has failed, and otherwise fails with an
//     errs.ObjectError of kind object lost naming the object and every
//     node tried with its error (object freed when the owner no longer
//     has it);
//   - serves the chunks of a copy it is still pulling to later pullers
//     (ServePartial, waiting for a chunk that has not arrived yet), so a
//     broadcast spreads over the receivers;
//   - writes chunks straight into the new secondary copy in the store
//     (objstore.Store.Fill), and tells the owner about the copy once it
//     is sealed (the owner's UpdateObjectLocation, Ray's
//     AddObjectLocation); a copy of an object the owner freed meanwhile
//     is dropped.
//
// Chunks travel over the transfer protocol (Server, Client): a TCP
// connection per chunk in flight, opened with the cluster token exchange
// (internal/tokenauth) like every raygo connection, then fixed-size
// request and answer headers with the chunk's bytes written from the
// holder's shared memory and read into the puller's: no protobuf and no
// copy in user space.
//
// The deciding parts (admit, chunks, pickHolder, mergeHolders) are pure
// functions; the Manager does the I/O through three interfaces (Store,
// Sources, Owners) that its tests fake:
//
//	m := objmgr.New(objmgr.Config{Self: daemonAddr, BudgetBytes: budget},
//		store, objmgr.NewClient(token, resolve), owners)
//	defer m.Close()
//	err := m.Pull(ctx, objmgr.Request{ID: id, Size: size, Owner: ownerAddr,
//		OwnerID: ownerID, Hints: []string{primaryNode}})
//
// See docs/objmgr.md for the whole path and its limits.
package objmgr
