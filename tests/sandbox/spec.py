"""Validate sandbox responses against the vendors' published API specifications.

The specs live outside the project (`../shared/reference`); tests skip with a clear reason where
that folder is absent. Two documented relaxations make the published schemas usable as
validators of real traffic:

- Jira (OpenAPI 3.0): the live API returns `null` for optional properties the spec types as
  plain strings (e.g. `ChangeDetails.from`), so `null` is accepted for properties an object does
  not list as `required` (and wherever the spec says `nullable`). Nothing else is relaxed;
  `additionalProperties: false` stays strict, so unknown keys fail.
- Azure DevOps (Swagger 2.0): Microsoft's generator writes C# `object` as `{"type": "object"}`,
  which on the wire is any JSON value (`fields` values are strings and numbers); such schemas
  are read as "any value".
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"
JIRA_PLATFORM = REFERENCE / "jira" / "platform-openapi-v3.json"
JIRA_SOFTWARE = REFERENCE / "jira" / "software-openapi-v3.json"
ADO_SPEC = REFERENCE / "azure-devops" / "wit-openapi-7.1.json"
ADO_EXAMPLES = REFERENCE / "azure-devops" / "examples"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference specification not found at {path} (shared/reference is absent)")
    return path


def _load(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(require(path).read_text(encoding="utf-8-sig"))
    return result


def _jira_relax(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _jira_relax(v) for k, v in node.items()}
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        props = node.get("properties")
        if isinstance(props, dict):
            required = set(node.get("required", []))
            for name, prop in props.items():
                if name not in required:
                    props[name] = _nullable(prop)
        return node
    if isinstance(node, list):
        return [_jira_relax(v) for v in node]
    return node


def _nullable(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return prop
    t = prop.get("type")
    if isinstance(t, str):
        out = dict(prop)
        out["type"] = [t, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    if isinstance(t, list):
        return prop if "null" in t else {**prop, "type": [*t, "null"]}
    return {"anyOf": [prop, {"type": "null"}]}


def _ado_relax(node: Any) -> Any:
    if isinstance(node, dict):
        keys = set(node) - {"description", "type"}
        if node.get("type") == "object" and not keys:
            return {}
        return {k: _ado_relax(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_ado_relax(v) for v in node]
    return node


@cache
def _registry(kind: str) -> tuple[Registry, str]:
    if kind == "jira":
        doc, uri = _jira_relax(_load(JIRA_PLATFORM)), "urn:jira-platform"
    elif kind == "jira-software":
        doc, uri = _jira_relax(_load(JIRA_SOFTWARE)), "urn:jira-software"
    else:
        doc, uri = _ado_relax(_load(ADO_SPEC)), "urn:ado-wit"
    resource = Resource(contents=doc, specification=DRAFT4)
    return Registry().with_resource(uri, resource), uri


def validator(kind: str, pointer: str) -> Draft4Validator:
    """A validator for the schema at `pointer` (e.g. `/components/schemas/IssueBean`)."""
    registry, uri = _registry(kind)
    return Draft4Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)


def check(kind: str, pointer: str, instance: Any) -> None:
    """Fail with the first schema violation, located by its JSON path."""
    errors = sorted(validator(kind, pointer).iter_errors(instance), key=lambda e: e.path)
    if errors:
        first: ValidationError = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        pytest.fail(f"{pointer} violated at /{where}: {first.message}"[:2000])


def jira_schema(name: str, instance: Any) -> None:
    check("jira", f"/components/schemas/{name}", instance)


def jira_response(path: str, method: str, status: str, instance: Any) -> None:
    """Validate against the operation's declared response schema (resolving its $ref)."""
    spec = _load(JIRA_PLATFORM)
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    escaped = path.replace("~", "~0").replace("/", "~1")
    assert "schema" in content, f"{method.upper()} {path} {status} declares no schema"
    check(
        "jira",
        f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema",
        instance,
    )


def ado_definition(name: str, instance: Any) -> None:
    check("ado", f"/definitions/{name}", instance)


def ado_response(path: str, method: str, instance: Any) -> None:
    """Validate against the 200 response schema; a wrapped collection is checked per value."""
    spec = _load(ADO_SPEC)
    schema = spec["paths"][path][method]["responses"]["200"]["schema"]
    escaped = path.replace("~", "~0").replace("/", "~1")
    pointer = f"/paths/{escaped}/{method}/responses/200/schema"
    if schema.get("type") == "array":
        assert set(instance) == {"count", "value"}, "collections come as {count, value}"
        assert instance["count"] == len(instance["value"])
        for item in instance["value"]:
            check("ado", f"{pointer}/items", item)
    else:
        check("ado", pointer, instance)


def software_schema(name: str) -> dict[str, Any]:
    doc = _load(JIRA_SOFTWARE)
    return copy.deepcopy(doc["components"]["schemas"][name])


def software_operation(path: str, method: str) -> dict[str, Any]:
    result: dict[str, Any] = _load(JIRA_SOFTWARE)["paths"][path][method]
    return result


def ado_example(relative: str) -> dict[str, Any]:
    return _load(ADO_EXAMPLES / relative)


def same_shape(example: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` lacks a key of `example` or has another JSON type (arrays: first item)."""
    problems: list[str] = []
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path or '/'}: expected an object"]
        for key, value in example.items():
            if key not in actual:
                problems.append(f"{path}/{key}: missing")
            else:
                problems += same_shape(value, actual[key], f"{path}/{key}")
    elif isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array"]
        if example and actual:
            problems += same_shape(example[0], actual[0], f"{path}/0")
    elif isinstance(example, bool):
        if not isinstance(actual, bool):
            problems.append(f"{path}: expected a boolean, got {actual!r}")
    elif isinstance(example, int | float):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            problems.append(f"{path}: expected a number, got {actual!r}")
    elif isinstance(example, str) and not isinstance(actual, str):
        problems.append(f"{path}: expected a string, got {actual!r}")
    return problems
