"""The pure core of Argo Rollouts: the planner, its replica math, status, operator patches and
timeline.
"""
