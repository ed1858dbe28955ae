"""Typed views of Argo Rollouts' resources: Rollout, AnalysisTemplate and AnalysisRun.
"""
