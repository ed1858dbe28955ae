"""Small leaf helpers shared by the daemon, the emulator, shiftctl and the tests.

Nothing here imports anything else of shiftd (an import-linter contract says so), so every
layer, and the emulator in ``shiftd.sim``, may use it. Import the modules themselves:
``mergepatch`` (RFC 7386) and ``tasks`` (starting tasks in a task group).
"""
