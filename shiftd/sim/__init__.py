"""An in-process Kubernetes API emulator speaking the real HTTP API, plus a fake kubelet.

Used by the tests and by ``shiftd demo``. It imports nothing else from shiftd.
"""
