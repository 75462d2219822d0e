package config_test

import (
	"fmt"

	"github.com/raygo/raygo/serve/config"
)

func Example() {
	data := []byte(`
applications:
  - name: hello
    route_prefix: /hello
    deployments:
      - name: web
        command: [python3, -m, http.server]
        autoscaling_config: {min_replicas: 0, max_replicas: 4}
`)
	c, err := config.Parse(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.ValidateResources([]map[string]float64{{"CPU": 2}}); err != nil {
		fmt.Println(err)
		return
	}
	c.Defaults()
	d := c.Applications[0].Deployments[0]
	fmt.Println(c.HTTPOptions.Host, *c.HTTPOptions.Port, d.PortEnv, *d.MaxOngoingRequests, *d.AutoscalingConfig.TargetOngoingRequests)

	_, err = config.Parse([]byte("applications:\n  - import_path: app.Main\n    deployments:\n      - name: Model\n        num_replica: 3\n"))
	fmt.Println(err)
	// Output:
	// 127.0.0.1 8000 PORT 5 2
	// serve config: applications[0].deployments[0]: unknown field "num_replica" (line 5); did you mean num_replicas?
}
