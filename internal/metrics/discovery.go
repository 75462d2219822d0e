package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/api"
)

// DiscoveryFile is the service-discovery file's name in the session
// directory (Ray's).
const DiscoveryFile = "prom_metrics_service_discovery.json"

// discoveryPoll is how often the writer looks for the API's address
// until the server listens (features are registered before it starts).
const discoveryPoll = 20 * time.Millisecond

// TargetGroup is one entry of a Prometheus file_sd file.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Labels are the labels the discovery file gives the head's target:
// job "raygo", SessionName (the session directory's name, Ray's label)
// and cluster (the control store's address).
func Labels(c *api.Cluster) map[string]string {
	l := map[string]string{"job": "raygo", "cluster": c.Address}
	if c.SessionDir != "" {
		l["SessionName"] = filepath.Base(c.SessionDir)
	}
	return l
}

// DiscoveryContent is the file_sd document naming addr (host:port) as
// the one target.
func DiscoveryContent(addr string, labels map[string]string) []byte {
	b, _ := json.MarshalIndent([]TargetGroup{{Targets: []string{addr}, Labels: labels}}, "", "  ")
	return append(b, '\n')
}

// WriteDiscovery writes content to path unless it holds it already,
// atomically (a file beside it renamed over it, so Prometheus never reads
// half a file), mode 0644: it names no secret. It reports whether it
// wrote.
func WriteDiscovery(path string, content []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("metrics: service discovery file: %w", err)
	}
	_, werr := tmp.Write(content)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return false, fmt.Errorf("metrics: service discovery file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return false, fmt.Errorf("metrics: service discovery file: %w", err)
	}
	return true, nil
}

// discovery writes the file once the API listens.
type discovery struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// startDiscovery starts the one goroutine that waits for addr() to name
// the API's address (the server starts after every feature registered)
// and writes the file. stop ends it.
func startDiscovery(path string, addr func() string, labels map[string]string, log *slog.Logger) *discovery {
	d := &discovery{done: make(chan struct{})}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(discoveryPoll)
		defer t.Stop()
		for {
			if a := addr(); a != "" {
				if _, err := WriteDiscovery(path, DiscoveryContent(a, labels)); err != nil {
					log.Warn("metrics: cannot write the Prometheus service discovery file", "path", path, "err", err)
				}
				return
			}
			select {
			case <-d.done:
				return
			case <-t.C:
			}
		}
	}()
	return d
}

func (d *discovery) stop() {
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
}
