"""The CustomResourceDefinitions shiftd reads, written by the project itself.

``shiftd crds`` renders them (``render``); deploy/crds/ holds the output, checked against the
generator by the tests, so ``kubectl apply -k deploy/`` needs no file from elsewhere.

- ``schema``: the small vocabulary the schemas are written in (closed and open objects).
- ``rollout``: argoproj.io Rollout's structural schema.
- ``analysis``: AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun's.
- ``render``: the CRD documents (names, scope, versions, subresources and printer columns from
  ``shiftd.kube.resources``) and their YAML.
"""

from shiftd.crds.render import crd_documents, render_files

__all__ = ["crd_documents", "render_files"]
