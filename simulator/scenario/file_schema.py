"""The JSON Schema of scenario files as they are written, for editors and CI.

Pydantic derives a JSON Schema from :class:`~simulator.scenario.schema.Scenario`, and
that schema describes a *resolved* scenario: every field without a default is required,
``extends`` is not a field and ``scale`` is a number. A file as written is looser, the
way a form with half its boxes pre-printed is: it may ``extends:`` another file or a
preset and then set only what differs, and it may write ``scale: 1/10``. An editor that
checked files against the resolved schema would flag false errors in almost every
preset. This module derives the written form from the resolved one, so the two cannot
drift apart:

- ``extends`` is a field: a path relative to the file, or a shipped preset's name;
- a file that extends another may leave out anything the loader merges: every field
  reached through mappings is optional. A list replaces the inherited one, and a
  distribution given with its ``dist`` replaces the inherited one whole, so those are
  still checked complete; a distribution written without ``dist`` changes the
  inherited one's parameters;
- a file that extends nothing must still say everything the resolved schema requires
  (an ``if``/``else`` on ``extends``);
- ``scale`` also takes a fraction such as ``1/10``.

What a schema cannot know (whether the inherited file exists, whether a partial
distribution fits the inherited family, whether shares sum to 1) the loader still
checks: ``campaign-sim validate`` is the full check, the schema the editor's.
"""

from __future__ import annotations

from typing import Any

from simulator.scenario.schema import Scenario

__all__ = ["EXTENDS", "SCALE_FRACTION", "file_schema", "resolved_schema"]

Node = dict[str, Any]

EXTENDS: Node = {
    "type": "string",
    "minLength": 1,
    "description": "The scenario this file builds on: a file path relative to this file "
    "(other.yaml) or a shipped preset's name (baseline; campaign-sim list names them). The "
    "file then sets only what differs: mappings merge, lists and other values replace the "
    "inherited ones, and a distribution given with its dist replaces the inherited one.",
}
"""The ``extends`` field, which the loader reads before the schema sees the file."""

SCALE_FRACTION = r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*[0-9]+(\.[0-9]+)?\s*$"
"""``scale`` written as a fraction (``1/10``), as the schema's validator reads it."""


def resolved_schema() -> Node:
    """The JSON Schema of a resolved scenario, as pydantic derives it (the reference docs)."""
    return Scenario.model_json_schema()


def file_schema() -> Node:
    """The JSON Schema of a scenario file as written (``campaign-sim schema`` prints it).

    Returns:
        A schema whose root accepts ``extends`` and, when a file extends another, any
        subset of the fields; without ``extends`` a file must hold every required field.
    """
    resolved = resolved_schema()
    defs: dict[str, Node] = resolved.pop("$defs", {})
    partial = _Partial(defs)
    root = partial.node(resolved)
    root["properties"] = {"extends": EXTENDS, **root["properties"]}
    root["properties"]["scale"] = _scale(root["properties"]["scale"])
    # Without extends, the file is the whole scenario: the resolved schema's required
    # fields and complete sections hold on top of the partial ones (a conjunction).
    complete: Node = {"required": resolved.get("required", [])}
    complete_properties = {
        name: prop
        for name, prop in resolved["properties"].items()
        if name != "scale" and prop != root["properties"][name]
    }
    if complete_properties:
        complete["properties"] = complete_properties
    root["if"] = {"required": ["extends"]}
    root["else"] = complete
    root["description"] = (
        f"{resolved.get('description', '')} A file that extends another may leave out "
        "anything it inherits; one that extends nothing must give every required field."
    ).strip()
    root["$defs"] = {**defs, **partial.made}
    return root


def _scale(prop: Node) -> Node:
    """``scale``: a number in its range, or a fraction such as ``1/10``."""
    number = {k: v for k, v in prop.items() if k not in ("description", "title", "default")}
    fraction = {
        "type": "string",
        "pattern": SCALE_FRACTION,
        "description": "A fraction such as 1/10.",
    }
    kept = {k: v for k, v in prop.items() if k in ("description", "title", "default")}
    return {"anyOf": [number, fraction], **kept}


class _Partial:
    """Makes the inherited-fields-optional variant of schema nodes and definitions.

    ``made`` collects the partial definitions, named ``<Name>Partial``, created on the
    way; a definition reached only through lists keeps only its complete form.
    """

    def __init__(self, defs: dict[str, Node]) -> None:
        self.defs = defs
        self.made: dict[str, Node] = {}

    def ref(self, ref: str) -> str:
        """The reference to the partial form of the definition ``ref`` points at."""
        name = ref.rsplit("/", 1)[-1]
        target = self.defs.get(name)
        if target is None or "properties" not in target:
            return ref  # an enumeration or a scalar: nothing to leave out
        partial = f"{name}Partial"
        if partial not in self.made:
            self.made[partial] = {}  # reserve first: definitions may refer to themselves
            self.made[partial] = self.node(target)
        return f"#/$defs/{partial}"

    def node(self, node: Node) -> Node:
        """The partial form of one schema node (a field's type, or a mapping)."""
        out = dict(node)
        if "$ref" in out:
            out["$ref"] = self.ref(out["$ref"])
        if "discriminator" in out:
            return self._union(out)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in out:
                out[key] = [self.node(member) for member in out[key]]
        if "properties" in out:
            out["properties"] = {k: self.node(v) for k, v in out["properties"].items()}
            out.pop("required", None)
        if isinstance(out.get("additionalProperties"), dict):  # a mapping of names: merged
            out["additionalProperties"] = self.node(out["additionalProperties"])
        if "patternProperties" in out:
            out["patternProperties"] = {
                k: self.node(v) for k, v in out["patternProperties"].items()
            }
        # "items": a list replaces the inherited list whole, so its items stay complete.
        return out

    def _union(self, node: Node) -> Node:
        """A distribution: whole (with its ``dist``), or parameters of the inherited one."""
        key = node["discriminator"]["propertyName"]
        parameters: dict[str, Node] = {}
        for member in node["oneOf"]:
            body = self.defs[member["$ref"].rsplit("/", 1)[-1]] if "$ref" in member else member
            for name, prop in body.get("properties", {}).items():
                if name != key:
                    parameters.setdefault(name, prop)
        inherited = {
            "type": "object",
            "description": f"Without {key}: parameters that change the inherited one's.",
            "properties": parameters,
            "additionalProperties": False,
            "minProperties": 1,
        }
        whole = {k: v for k, v in node.items() if k not in ("description", "title")}
        kept = {k: v for k, v in node.items() if k in ("description", "title")}
        return {"anyOf": [whole, inherited], **kept}
