"""The Istio traffic router: pure route computations (routes.py) and the router (router.py).
"""
