package wirecheck

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/pb"
)

// batch1024 is a push stream's full batch of small tasks, as senders make.
func batch1024() *pb.TaskBatch {
	b := &pb.TaskBatch{Common: &pb.TaskSpec{JobId: newID(), OwnerId: newID(), OwnerAddress: "127.0.0.1:40000",
		Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}}}
	for range 1024 {
		b.Tasks = append(b.Tasks, spec())
	}
	return b
}

// BenchmarkTaskBatch: the receiver's check of a 1,024-task batch.
func BenchmarkTaskBatch(b *testing.B) {
	batch := batch1024()
	b.ReportAllocs()
	for b.Loop() {
		if err := TaskBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/task")
}

// BenchmarkDepth: the nesting check framed runs before decoding that batch.
func BenchmarkDepth(b *testing.B) {
	raw, _ := proto.Marshal(batch1024())
	md := (&pb.TaskBatch{}).ProtoReflect().Descriptor()
	b.ReportAllocs()
	for b.Loop() {
		if err := Depth(raw, md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/task")
}

// BenchmarkUnmarshal: decoding the same batch, for scale.
func BenchmarkUnmarshal(b *testing.B) {
	raw, _ := proto.Marshal(batch1024())
	b.ReportAllocs()
	for b.Loop() {
		var m pb.TaskBatch
		if err := m.UnmarshalVT(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/task")
}
