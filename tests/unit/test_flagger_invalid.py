"""A Canary the model cannot use is refused with the first bad field named (what the daemon
puts in the Canary's Warning Event), whatever the API server's schema let through."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.model.flagger.canary import InvalidCanaryError, parse_canary

VALID: dict[str, Any] = {
    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
    "service": {"port": 9898},
    "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
}


def canary(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "podinfo", "namespace": "test"}, "spec": {**VALID, **spec}}


def test_a_valid_canary_with_or_without_the_istio_provider_is_accepted() -> None:
    assert parse_canary(canary()).spec.target_ref.name == "podinfo"
    assert parse_canary(canary(provider="istio")).spec.provider == "istio"


@pytest.mark.parametrize(("spec", "named"), [
    ({"targetRef": None}, "spec.targetRef"),
    ({"service": {"port": "http"}}, "spec.service.port"),
    ({"analysis": {**VALID["analysis"], "threshold": "many"}}, "spec.analysis.threshold"),
    ({"analysis": {**VALID["analysis"], "interval": "soon"}}, "spec.analysis.interval"),
    ({"provider": "linkerd"}, "spec.provider: linkerd is not supported"),
    ({"targetRef": {"kind": "DaemonSet", "name": "podinfo"}}, "spec.targetRef.kind"),
])
def test_an_unusable_canary_is_refused_naming_its_field(spec: dict[str, Any],
                                                         named: str) -> None:
    with pytest.raises(InvalidCanaryError, match=named.replace(".", r"\.")):
        parse_canary(canary(**spec))


def test_a_canary_without_target_ref_is_refused_naming_it() -> None:
    spec = {k: v for k, v in VALID.items() if k != "targetRef"}
    with pytest.raises(InvalidCanaryError, match=r"spec\.targetRef"):
        parse_canary({"metadata": {"name": "podinfo"}, "spec": spec})
