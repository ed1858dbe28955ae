"""The generic engine and its lifecycle: keys, queues, workers, timers, caches with registered
kinds and indexes, writer tasks, leadership, the clock and the daemon's own telemetry. Nothing
here knows what a Rollout is; controllers (``shiftd.controllers``) register on it."""
