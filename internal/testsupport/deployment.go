package testsupport

import (
	"fmt"
	"strings"
)

// Deployment is a minimal apps/v1 Deployment: Replicas instances of one container,
// labelled and selected by app: Name.
type Deployment struct {
	Name     string
	Replicas int
	// Container is the container's name; "main" when empty.
	Container string
	Image     string
	// GracePeriod is terminationGracePeriodSeconds, left out when 0; tests set a short
	// one so that stopping instances does not wait the default 30 s.
	GracePeriod int
	// ContainerYAML is added to the container: lines indented by 8 spaces (env, ports,
	// probes…), each ending in a newline.
	ContainerYAML string
}

// YAML is the manifest. The pod spec starts with "    spec:\n", then the grace period
// line if any, which tests may use as anchors to insert pod-level fields.
func (d Deployment) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
`, d.Name, d.Replicas)
	if d.GracePeriod != 0 {
		fmt.Fprintf(&b, "      terminationGracePeriodSeconds: %d\n", d.GracePeriod)
	}
	container := d.Container
	if container == "" {
		container = "main"
	}
	fmt.Fprintf(&b, "      containers:\n      - name: %s\n        image: %s\n%s", container, d.Image, d.ContainerYAML)
	return b.String()
}
