package coreworker

import (
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/rpc"
)

func errObjectFreed(id ids.ID) error {
	return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectFreed, Detail: "no reference to it remained, or ray.Free deleted it"}
}

func isUnavailable(err error) bool { return rpc.IsUnavailable(err) }
