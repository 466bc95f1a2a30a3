"""Every manifest under deploy/ is valid, offline: Kubernetes kinds against the Kubernetes JSON schemas
(the `kubernetes-validate` package, strict: unknown fields are errors), Argo Rollouts and Flagger kinds
against their CRDs' schemas (vendored, see vendor/SOURCE.md), and the parts that must agree with each
other and with Shipyard do (routes, ports, Secret keys, names, the shipyard.yaml in the ConfigMap)."""

from __future__ import annotations

import copy
import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from starlette.routing import Route

from shipyard.config import ShipyardConfig
from shipyard.server import ROUTES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENDOR = Path(__file__).parent / "vendor"
K8S_VERSION = "1.33.0"
CRDS = {
    ("argoproj.io/v1alpha1", "Rollout"): "argo-rollouts/rollout-v1alpha1.json.gz",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "argo-rollouts/analysistemplate-v1alpha1.json.gz",
    ("flagger.app/v1beta1", "Canary"): "flagger/canary-v1beta1.json.gz",
}
FILES = sorted(DEPLOY.rglob("*.yaml"))


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in FILES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                out.append((f"{path.relative_to(DEPLOY)}#{i}", doc))
    return out


DOCS = documents()


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in DOCS if d["kind"] == kind]


def _strict(schema: Any) -> Any:
    """A CRD's structural schema made strict like the API server's field validation: an object
    with listed properties takes no others unless it says it preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    data = json.loads(gzip.decompress((VENDOR / CRDS[(api_version, kind)]).read_bytes()))
    assert f"{data['group']}/{data['version']}" == api_version and data["kind"] == kind
    return jsonschema.Draft4Validator(_strict(data["openAPIV3Schema"]))


def problems(doc: dict[str, Any]) -> list[str]:
    """Why a manifest is invalid (empty when it is valid)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRDS:
        validator = crd_validator(*key)  # type: ignore[arg-type]
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    return []


def test_the_deploy_folder_has_every_resource_the_issue_names() -> None:
    kinds = sorted({d["kind"] for _, d in DOCS})
    assert kinds == sorted(
        {
            "AnalysisTemplate",
            "Canary",
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Rollout",
            "Secret",
            "Service",
        }
    )


@pytest.mark.parametrize("name,doc", DOCS, ids=[n for n, _ in DOCS])
def test_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    assert problems(doc) == [], name


@pytest.mark.parametrize(
    "kind,path,bad",
    [
        ("Deployment", ["spec", "template", "spec", "containers", 0, "readinessProbe"], {"httpGett": {}}),
        ("HorizontalPodAutoscaler", ["spec", "minReplicas"], "three"),
        ("Rollout", ["spec", "strategy", "canary", "steps", 0], {"setWieght": 10}),
        ("AnalysisTemplate", ["spec", "metrics", 0, "provider", "web", "headers"], [{"name": "x"}]),
        ("Canary", ["spec", "analysis", "webhooks", 0, "type"], "before-rollout"),
    ],
)
def test_the_validation_catches_a_broken_manifest(kind: str, path: list[Any], bad: Any) -> None:
    """The checks above can fail: the same manifests with one field broken are refused."""
    doc = copy.deepcopy(by_kind(kind)[0])
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    assert problems(doc), f"a broken {kind} passed validation"


def _pod_specs() -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in by_kind("Deployment") + by_kind("Rollout")]


def _route_paths() -> set[str]:
    return {r.path for r in ROUTES if isinstance(r, Route)}


def test_probes_use_the_servers_health_routes_on_a_declared_port() -> None:
    for spec in _pod_specs():
        (container,) = spec["containers"]
        ports = {p["name"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["path"] in _route_paths()
            assert container[probe]["httpGet"]["port"] in ports
        assert container["resources"]["requests"]["cpu"]


def test_secret_references_exist_in_the_example_secret() -> None:
    (secret,) = by_kind("Secret")
    keys = set(secret["stringData"])
    refs = set()
    for spec in _pod_specs():
        for env in spec["containers"][0]["env"]:
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            refs.add(ref["key"])
    for template in by_kind("AnalysisTemplate"):
        for arg in template["spec"]["args"]:
            ref = (arg.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"]
                refs.add(ref["key"])
    assert refs <= keys, f"missing from the Secret: {refs - keys}"


def test_the_configmap_holds_a_valid_shipyard_yaml_that_drains_within_the_grace_period() -> None:
    (config_map,) = by_kind("ConfigMap")
    cfg = ShipyardConfig.model_validate(yaml.safe_load(config_map["data"]["shipyard.yaml"]))
    assert cfg.server.host == "0.0.0.0"
    drain = cfg.server.drain.delay_s + cfg.server.drain.timeout_s
    for spec in _pod_specs():
        assert spec["terminationGracePeriodSeconds"] > drain
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert "/app/shipyard.yaml" in mounts and "/app/.shipyard" in mounts


def test_hpa_pdb_and_services_point_at_the_deployment() -> None:
    (deployment,) = by_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (pdb,) = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    for service in by_kind("Service"):
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_argo_analysis_template_calls_the_analysis_endpoint_with_the_rollouts_args() -> None:
    (template,) = by_kind("AnalysisTemplate")
    (rollout,) = by_kind("Rollout")
    (metric,) = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    assert re.sub(r"^http://[^/]+", "", web["url"]).split("?")[0] == "/k8s/argo/analysis"
    assert "/k8s/argo/analysis" in _route_paths()
    assert metric["successCondition"] == 'result.verdict == "pass"'
    assert metric["failureCondition"] == 'result.verdict == "fail"'
    declared = {a["name"] for a in template["spec"]["args"]}
    used = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", json.dumps(web)))
    assert used <= declared
    stable = rollout["spec"]["strategy"]["canary"]["stableService"]
    assert web["url"].startswith(f"http://{stable}.")
    required = {a["name"] for a in template["spec"]["args"] if "value" not in a and "valueFrom" not in a}
    for step in rollout["spec"]["strategy"]["canary"]["steps"]:
        if "analysis" in step:
            assert step["analysis"]["templates"][0]["templateName"] == template["metadata"]["name"]
            assert required <= {a["name"] for a in step["analysis"]["args"]}


def test_flagger_canary_wires_every_hook_to_its_endpoint() -> None:
    (canary,) = by_kind("Canary")
    (deployment,) = by_kind("Deployment")
    assert canary["spec"]["targetRef"]["name"] == deployment["metadata"]["name"]
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert set(hooks) == {"confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "rollback"}
    for kind, hook in hooks.items():
        assert hook["url"].endswith(f"/k8s/flagger/{kind}")
        assert {"agent", "canary", "token"} <= set(hook["metadata"])
        assert all(isinstance(v, str) for v in hook["metadata"].values()), (
            "Flagger metadata is map[string]string"
        )
    assert "/k8s/flagger/{hook}" in _route_paths()
