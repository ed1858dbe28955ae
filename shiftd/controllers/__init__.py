"""Controllers on the engine: each registers the kinds it reads on the caches and the kind it
reconciles on the engine, and turns the pure core's decisions into writes. ``rollout`` (Argo
Rollouts' canary), ``analysisrun`` (measurements on schedule)."""
