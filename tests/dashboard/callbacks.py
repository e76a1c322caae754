"""Call a dashboard callback as the Dash renderer does, with its exact output spec read from
/_dash-dependencies (outputs marked allow_duplicate carry an "@hash" suffix only the server knows)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.dashboard.conftest import post_callback


def _input_key(item: dict[str, Any]) -> str:
    """ "id.prop", or "type.prop" for a wildcard id."""
    key = item["id"]
    return f"{json.loads(key)['type'] if key.startswith('{') else key}.{item['property']}"


def _dependency(client: TestClient, trigger: str) -> dict[str, Any]:
    """The one callback that has `trigger` ("id.prop", or "type.prop" of a wildcard) among its inputs."""
    response = client.get("/dashboard/_dash-dependencies")
    assert response.status_code == 200, response.text
    matches = [d for d in response.json() if trigger in {_input_key(i) for i in d["inputs"]}]
    assert len(matches) == 1, f"{len(matches)} callbacks have the input {trigger}"
    return matches[0]


def _outputs(spec: str) -> list[tuple[str, str, str]]:
    """(id, property, property as sent) for each output of a spec like '..a.b...c.d@hash..'."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    result = []
    for part in parts:
        component, sent = part.rsplit(".", 1)
        result.append((component, sent.split("@")[0], sent))
    return result


def call(
    client: TestClient,
    trigger: str,
    values: dict[str, Any],
    *,
    triggered: str | None = None,
    pattern: dict[str, list[dict[str, Any]]] | None = None,
) -> Any:
    """POST the callback that `trigger` ("id.prop" of an input) fires, as if it changed.

    `values` maps "id.prop" to the value of each input and state (missing ones are None);
    `pattern` maps the "id-type.prop" of a wildcard input to the list the renderer sends for it;
    `triggered` overrides the changed input's name (a pattern id is JSON + ".prop")."""
    dependency = _dependency(client, trigger)
    outputs = _outputs(dependency["output"])
    described: Any = [{"id": c, "property": sent} for c, _, sent in outputs]
    if not dependency["output"].startswith(".."):
        described = described[0]

    def entry(item: dict[str, Any]) -> Any:
        key = _input_key(item)
        if item["id"].startswith("{"):
            return (pattern or {}).get(key, [])
        return {"id": item["id"], "property": item["property"], "value": values.get(key)}

    inputs = [entry(i) for i in dependency["inputs"]]
    body = {
        "output": dependency["output"],
        "outputs": described,
        "inputs": inputs,
        "state": [entry(s) for s in dependency["state"]],
        "changedPropIds": [triggered or trigger],
    }
    return post_callback(client, body)


def response_of(result: Any) -> dict[str, Any]:
    """The callback's answer per component id (props merged), after checking it succeeded."""
    assert result.status_code == 200, result.text
    return result.json()["response"]


def text_of(value: Any) -> str:
    return json.dumps(value)


def find(tree: Any, component_id: str) -> dict[str, Any]:
    """The props of the component with that id in a serialized layout (as render_page returns it)."""
    stack = [json.loads(tree) if isinstance(tree, str) else tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict):
                if props.get("id") == component_id:
                    return props
                stack.extend(props.values())
            else:
                stack.extend(node.values())
    raise AssertionError(f"no component with id {component_id!r}")
