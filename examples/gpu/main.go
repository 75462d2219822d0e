// Command gpu shows GPU scheduling on an embedded cluster: the node
// detects its GPUs (NVML-free, through nvidia-smi), a task that asks for
// one GPU sees exactly that GPU through CUDA_VISIBLE_DEVICES, and a task
// that asks for none sees none. Where python3 with PyTorch is installed,
// each task also reports what CUDA itself sees.
//
//	go run ./examples/gpu
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/raygo/raygo/ray"
)

// view reports the GPUs visible to the task's process.
func view(ctx context.Context) (string, error) {
	v, set := os.LookupEnv("CUDA_VISIBLE_DEVICES")
	out := fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q (set=%v)", v, set)
	if _, err := exec.LookPath("python3"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		b, err := exec.CommandContext(ctx, "python3", "-c",
			"import torch; n=torch.cuda.device_count(); print(n, [torch.cuda.get_device_name(i) for i in range(n)])").CombinedOutput()
		if err == nil {
			out += "; torch sees " + strings.TrimSpace(string(b))
		}
	}
	return out, nil
}

// View is view as a remote function.
var View = ray.Func0(view)

func main() {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		log.Fatal(err)
	}
	err := run(ctx)
	if serr := ray.Shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	res, err := ray.ClusterResources(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("cluster: %v CPUs, %v GPUs\n", res["CPU"], res["GPU"])
	if res["GPU"] >= 1 {
		v, err := View.Options(ray.NumGPUs(1)).Remote(ctx).Get(ctx)
		if err != nil {
			return err
		}
		fmt.Println("one-GPU task:", v)
	}
	v, err := View.Remote(ctx).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println("zero-GPU task:", v)
	return nil
}
