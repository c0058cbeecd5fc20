// Package chartcheck tests the Helm chart in charts/stagehand: its tests run
// `helm template` with the default values, the scale-out values and
// variations, decode every rendered manifest strictly into the Kubernetes
// API types (an unknown field, a duplicate key or an unexpected kind fails),
// and check what the chart promises: probes, a non-root pod with a
// read-only root filesystem, one replica with a PersistentVolumeClaim in the
// embedded mode, several with a PodDisruptionBudget in the scale-out mode,
// and a refusal of several replicas without a shared database and NATS.
//
// It is its own Go module so that the Kubernetes API modules stay out of
// Stagehand's go.mod. Run it with `go test ./...` in this folder, or
// `.ci/chart-check` from the repository, which also installs helm.
package chartcheck
