package planner

import "github.com/shoalhq/shoal/spec"

// defaultRollingBound is Kubernetes' default maxSurge and maxUnavailable.
var defaultRollingBound = spec.FromString("25%")

// rolloutOf describes a workload's update when outdated instances remain.
func rolloutOf(w *workload) (Rollout, bool) {
	if len(w.outdated) == 0 {
		return Rollout{}, false
	}
	strategy, surge, unavailable := RolloutBounds(w.d.Spec.Strategy, w.replicas)
	return Rollout{
		Namespace: w.ns, Workload: w.name, SpecHash: w.hash, Replicas: w.replicas,
		Strategy: strategy, MaxSurge: surge, MaxUnavailable: unavailable,
		Outdated: w.outdated,
	}, true
}

// RolloutBounds resolves a Deployment strategy against its replica count as Kubernetes
// does: Recreate stops everything first (no surge, all unavailable); RollingUpdate rounds a
// percentage maxSurge up and maxUnavailable down, defaults both to 25%, and allows one
// unavailable when both come to zero so that the update can progress. A malformed value,
// which validation rejects before a plan, counts as the default.
func RolloutBounds(s spec.DeploymentStrategy, replicas int) (strategy string, maxSurge, maxUnavailable int) {
	if s.Type == spec.StrategyRecreate {
		return spec.StrategyRecreate, 0, replicas
	}
	surgeBound, unavailableBound := &defaultRollingBound, &defaultRollingBound
	if ru := s.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surgeBound = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailableBound = ru.MaxUnavailable
		}
	}
	maxSurge = scaled(surgeBound, replicas, true)
	maxUnavailable = scaled(unavailableBound, replicas, false)
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return spec.StrategyRollingUpdate, maxSurge, maxUnavailable
}

func scaled(v *spec.IntOrString, replicas int, roundUp bool) int {
	n, err := v.ScaledValue(replicas, roundUp)
	if err != nil || n < 0 {
		n, _ = defaultRollingBound.ScaledValue(replicas, roundUp)
	}
	return n
}
