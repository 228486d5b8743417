"""KServe's InferenceService schema (the CRD kept in ``devenv/kserve``) as a strict JSON Schema.

The apiserver with ``fieldValidation=Strict`` refuses a field its structural schema does not
declare, where a plain JSON Schema reading would let it through: so every object schema that
lists its ``properties``, and neither allows other keys nor preserves unknown fields, gets
``additionalProperties: false`` here. ``metadata`` is the apiserver's own ObjectMeta, which the
CRD leaves open; it is checked for the keys this bundle writes.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

KSERVE = Path(__file__).resolve().parents[1] / "devenv" / "kserve"
CRD = KSERVE / "serving.kserve.io_inferenceservices.yaml"

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _strict(value) for key, value in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


@cache
def inference_service_schema(version: str = "v1beta1") -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(CRD.read_text(encoding="utf-8"), Loader=loader)
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = _METADATA
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return _strict(schema)  # type: ignore[no-any-return]


def problems(obj: Any) -> list[str]:
    """Each way ``obj`` breaks the InferenceService schema, with the path to it."""
    validator = jsonschema.Draft7Validator(inference_service_schema())
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    )
