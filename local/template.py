"""``template.yaml`` as data: the one CloudFormation-aware loader for every tool that reads it
(the local stack's resources, the template lint, the tests).

Short-form intrinsic functions become the long form CloudFormation and samtranslator read:
``!Ref X`` -> ``{"Ref": "X"}``, ``!Sub s`` -> ``{"Fn::Sub": "s"}``, ``!GetAtt A.B`` ->
``{"Fn::GetAtt": ["A", "B"]}``. A ``.json`` template is read as JSON. Needs only PyYAML, so it
runs in the SAM CLI's venv too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from local.paths import TEMPLATE


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps CloudFormation short-form tags as their long-form mappings."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - YAML has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template at ``path`` (default: the project's ``template.yaml``) as a mapping.
    Raises ``yaml.YAMLError`` (or ``json.JSONDecodeError``) when it does not parse or is not a
    mapping, ``OSError`` when it cannot be read."""
    text = path.read_text(encoding="utf-8")
    document = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=CfnLoader)  # noqa: S506
    if not isinstance(document, dict):
        raise yaml.YAMLError("the template is not a mapping")
    return document
