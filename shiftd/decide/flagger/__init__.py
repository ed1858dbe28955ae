"""Flagger's Canary (flagger.app/v1beta1), decided as Flagger decides it: pure, no I/O.

Queries and thresholds of the canary analysis (``metrics``), the primary's autoscaler
(``autoscaler``) and the Canary's state machine live here, one concern per module.
"""
