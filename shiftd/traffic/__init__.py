"""Traffic routers behind one protocol (``base.py``), picked per Rollout by ``registry.py``:
the do-nothing router (``noop.py``) and Istio (``istio/``: pure route computation in
``routes.py``, the router in ``router.py``)."""
