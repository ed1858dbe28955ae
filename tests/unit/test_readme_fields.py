"""The README's table of Rollout fields: every field of issue 9 has a row that says what shiftd
does with it, and none of them is left "not supported"."""

from __future__ import annotations

from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
ISSUE_9_FIELDS = [
    "`trafficRouting.istio.destinationRule`", "`spec.workloadRef`",
    "`strategy.canary.canaryMetadata`", "`steps[].setCanaryScale`",
    "`strategy.canary.dynamicStableScale`", "`strategy.canary.minPodsPerReplicaSet`",
    "`maxSurge`, `maxUnavailable`", "`strategy.canary.scaleDownDelayRevisionLimit`",
    "`spec.progressDeadlineSeconds`", "`spec.progressDeadlineAbort`", "`spec.restartAt`",
    "`spec.paused`", "`trafficRouting.managedRoutes[]`", "`steps[].setHeaderRoute`",
    "`steps[].setMirrorRoute`", "`trafficRouting.istio.virtualService`",
    "`trafficRouting.istio.virtualServices[]`",
]


def field_rows() -> dict[str, str]:
    text = README.read_text()
    table = text.split("### Rollout fields supported so far", 1)[1].split("\n\n", 2)[1]
    return {line.split(" | ", 1)[0].removeprefix("| "): line
            for line in table.splitlines() if line.startswith("| `")}


@pytest.mark.parametrize("field", ISSUE_9_FIELDS)
def test_each_field_of_issue_9_has_a_row_that_does_not_say_not_supported(field: str) -> None:
    rows = [row for name, row in field_rows().items() if name.startswith(field)]
    assert rows, f"no row for {field}"
    for row in rows:
        assert "not supported" not in row.lower()
        assert "unsupported" not in row.lower()
