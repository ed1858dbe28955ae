"""Kubernetes plumbing: the API client over kubernetes_asyncio (errors mapped to a small
exception tree, client-side rate limit), list+watch informers, and the Events recorder."""
