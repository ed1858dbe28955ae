"""Kubernetes plumbing: the API client over kubernetes_asyncio, list+watch caches, patch
helpers with conflict handling, and the Kubernetes Events recorder."""
