"""The CRDs shiftd writes (``shiftd crds``): deploy/crds/ is the generator's output; they are
structural; names, scope, versions and subresources are Argo's; every field they spell out
has Argo's name and type, every closed object Argo's full field list (so pruning is Argo's),
and every example Rollout and template survives pruning unchanged.

The comparison with Argo's own CRD files reads them from ``shared/crds`` when it is there (it
is in this repository's CI); they are compared with, never copied.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftd.cli.daemon import main
from shiftd.crds import crd_documents, render_files
from shiftd.crds.schema import INT_OR_STRING, PRESERVE
from shiftd.sim.schema import compile_processor
from tests.integration.harness import example_documents, shared_dir

DEPLOY_CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"
ARGO_FILES = {"Rollout": "rollout-crd.yaml", "AnalysisTemplate": "analysis-template-crd.yaml",
              "ClusterAnalysisTemplate": "cluster-analysis-template-crd.yaml",
              "AnalysisRun": "analysis-run-crd.yaml"}
Obj = dict[str, Any]


def ours() -> dict[str, Obj]:
    return {crd["spec"]["names"]["kind"]: crd for crd in crd_documents()}


def argo(kind: str) -> Obj:
    document = _argo(kind)
    if document is None:
        pytest.skip("Argo Rollouts' CRD files (shared/crds/argo-rollouts) are not here")
    return document


@functools.cache
def _argo(kind: str) -> Obj | None:
    try:
        path = shared_dir() / "crds" / "argo-rollouts" / ARGO_FILES[kind]
    except FileNotFoundError:
        path = Path("/nonexistent")
    if not path.is_file():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document: Obj = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return document


def schema_of(crd: Obj) -> Obj:
    schema: Obj = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_deploy_crds_holds_exactly_what_the_generator_writes() -> None:
    files = render_files()
    assert sorted(p.name for p in DEPLOY_CRDS.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (DEPLOY_CRDS / name).read_text(encoding="utf-8") == text, name


def test_the_crds_command_checks_a_directory_and_names_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crds", "--output", str(tmp_path)]) == 0
    assert main(["crds", "--check", str(tmp_path)]) == 0
    (tmp_path / "rollouts.yaml").write_text("stale", encoding="utf-8")
    assert main(["crds", "--check", str(tmp_path)]) == 1
    assert "rollouts.yaml is out of date" in capsys.readouterr().err


def test_the_crds_command_prints_the_four_crds_as_one_yaml_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crds"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents] == [
        "rollouts.argoproj.io", "analysistemplates.argoproj.io",
        "clusteranalysistemplates.argoproj.io", "analysisruns.argoproj.io"]


def nodes(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for key, child in (schema.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{key}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", sorted(ARGO_FILES))
def test_every_schema_is_structural(kind: str) -> None:
    for path, node in nodes(schema_of(ours()[kind])):
        if node.get(INT_OR_STRING):
            assert [b["type"] for b in node["anyOf"]] == ["integer", "string"], path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        if node["type"] == "array":
            assert "items" in node, path
        assert not ("properties" in node and "additionalProperties" in node), path


@pytest.mark.parametrize("kind", sorted(ARGO_FILES))
def test_names_scope_version_and_subresources_are_argos(kind: str) -> None:
    mine, theirs = ours()[kind], argo(kind)
    assert mine["metadata"]["name"] == theirs["metadata"]["name"]
    assert mine["spec"]["group"] == theirs["spec"]["group"] == "argoproj.io"
    assert mine["spec"]["scope"] == theirs["spec"]["scope"]
    for key in ("kind", "listKind", "plural", "singular", "shortNames"):
        assert mine["spec"]["names"][key] == theirs["spec"]["names"][key], key
    [version], [their_version] = mine["spec"]["versions"], theirs["spec"]["versions"]
    for key in ("name", "served", "storage", "subresources"):
        assert version[key] == their_version[key], key
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        c["name"] for c in their_version["additionalPrinterColumns"]]


def test_the_rollout_has_the_status_and_scale_subresources() -> None:
    subresources = ours()["Rollout"]["spec"]["versions"][0]["subresources"]
    assert subresources["status"] == {}
    assert subresources["scale"]["specReplicasPath"] == ".spec.replicas"


def kind_of(node: Mapping[str, Any]) -> tuple[object, ...]:
    return (node.get("type"), node.get("format"), bool(node.get(INT_OR_STRING)))


@pytest.mark.parametrize("kind", sorted(ARGO_FILES))
def test_every_field_has_argos_name_and_type_and_closed_objects_list_all_of_argos(
    kind: str,
) -> None:
    theirs = dict(nodes(schema_of(argo(kind))))
    for path, node in nodes(schema_of(ours()[kind])):
        if path in {".metadata"}:
            continue
        assert path in theirs, f"{kind}{path}: not a field of Argo's {kind}"
        their = theirs[path]
        assert kind_of(node) == kind_of(their), f"{kind}{path}"
        if node.get("type") == "object" and not node.get(PRESERVE):
            assert set(node.get("properties") or {}) == set(their.get("properties") or {}), \
                f"{kind}{path}: a closed object must list every field Argo has"
            assert sorted(node.get("required") or []) == sorted(their.get("required") or []), \
                f"{kind}{path}"
            assert ("additionalProperties" in node) == ("additionalProperties" in their), \
                f"{kind}{path}"


@pytest.mark.parametrize("kind", sorted(ARGO_FILES))
def test_unknown_fields_are_kept_wherever_argo_keeps_them(kind: str) -> None:
    mine = dict(nodes(schema_of(ours()[kind])))
    for path, node in nodes(schema_of(argo(kind))):
        if not node.get(PRESERVE):
            continue
        # The node itself, or an object above it that keeps everything under it.
        prefixes = [path[:i] for i in range(len(path), -1, -1) if path[:i] in mine]
        assert any(mine[prefix].get(PRESERVE) for prefix in prefixes), f"{kind}{path}"


EXAMPLES = ("asm-host-split", "imesh-host-split", "myapp-analysis", "tsb-subset-skywalking")


def example_objects() -> list[Obj]:
    try:
        return [d for folder in EXAMPLES for d in example_documents(folder)
                if d.get("apiVersion", "").startswith("argoproj.io/")]
    except FileNotFoundError:
        pytest.skip("shared/examples is not here")


def kept(stored: Any, written: Any) -> bool:
    """Whether everything written is in ``stored`` unchanged (defaults may be added)."""
    if isinstance(written, dict):
        return isinstance(stored, dict) and all(
            key in stored and kept(stored[key], value) for key, value in written.items())
    if isinstance(written, list):
        return isinstance(stored, list) and len(stored) == len(written) and all(
            kept(left, right) for left, right in zip(stored, written, strict=True))
    return bool(stored == written)


def test_every_example_is_valid_and_loses_nothing_to_pruning_by_these_schemas() -> None:
    processors = {kind: compile_processor(schema_of(crd)) for kind, crd in ours().items()}
    objects = example_objects()
    assert {o["kind"] for o in objects} >= {"Rollout", "AnalysisTemplate"}
    for obj in objects:
        processed, causes = processors[obj["kind"]](copy.deepcopy(obj), None)
        assert causes == [], (obj["metadata"]["name"], causes)
        assert kept(processed, obj), obj["metadata"]["name"]


MODELS = Path(__file__).resolve().parents[2] / "shiftd" / "model" / "argo"
# Read by the models but not declared by a CRD: object metadata (every CRD's metadata is the
# API server's ObjectMeta) and the pod template's inside (kept unpruned, checked by the API
# server when shiftd copies it into a ReplicaSet).
NOT_IN_THE_SCHEMAS = {"namespace", "uid", "generation", "containers"}


def declared_fields() -> set[str]:
    return {path.rsplit(".", 1)[-1].removesuffix("[]")
            for crd in crd_documents() for path, _ in nodes(schema_of(crd)) if path}


def test_every_field_the_argo_models_read_is_declared_by_the_crds() -> None:
    read = {key for source in MODELS.glob("*.py")
            for key in re.findall(r'(?:get\(|\[)"([A-Za-z][A-Za-z0-9]*)"',
                                  source.read_text(encoding="utf-8"))}
    assert len(read) > 30  # the pattern still finds what the models read (45 today)
    assert read - NOT_IN_THE_SCHEMAS - declared_fields() == set()
