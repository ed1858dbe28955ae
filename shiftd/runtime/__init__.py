"""The daemon: root task group, event queue, reconciler, writers, timers and signal handling."""
