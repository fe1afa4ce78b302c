// Package spec owns Shoal's manifest model: the Kubernetes-shaped kinds Shoal honours
// (apps/v1 Deployment, v1 Service, ConfigMap, Secret and Namespace), their decoding from
// YAML with file:line:field-path diagnostics, defaulting as Kubernetes applies it, and
// validation, as strict as kubectl: what Kubernetes lacks is an error, what Shoal does
// not honour a warning (docs/validation.md). A revision's manifests (YAML files, JSON
// files that are objects, List items, and what kustomizations render) load
// all-or-nothing (Load); InstanceHash says when a Deployment's instances must be replaced.
//
// spec does no I/O beyond reading the files it is handed and imports only the standard
// library and sigs.k8s.io/yaml: every other room depends on it, it depends on none. What
// it knows of Kubernetes' own API is generated into k8s_gen.go by internal/k8sgen, which
// alone imports k8s.io/api. Kustomizations are rendered by the Kustomizer it is handed
// (spec/kustomize), so that spec does not depend on kustomize. It
// must not place, run or serve anything, and keeps no state between calls; the only
// goroutines it starts are Load's decoding workers, which Load waits for.
package spec
