"""Typed views of Flagger's resources (``flagger.app/v1beta1``): the Canary and its parts."""
