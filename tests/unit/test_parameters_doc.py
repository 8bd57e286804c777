"""docs/parameters.md is the one table of every setting, held against template.yaml and ``Settings``.

Every template parameter, every environment variable a function receives (``Globals`` and each
function's own ``Environment``) and every field of ``broker.config.Settings`` must have exactly one
row in the table, and each row must agree with the template (which parameter becomes which variable,
the default) and with ``Settings`` (which field reads which variable). Nothing here lists the
settings by name, so a new setting is checked as soon as it exists in any of the three places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from broker.config import Settings
from local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "parameters.md"
TEMPLATE = ROOT / "template.yaml"
DOC_NAME = "docs/parameters.md"

# The table is the one whose header has these columns (in any order, among others).
PARAMETER, ENV, FIELD, DEFAULT = "Parameter", "Environment variable", "Settings field", "Default"
_PIPE = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"^`([^`]*)`")


@dataclass(frozen=True)
class Row:
    """One row of the table: names are ``None`` where the cell says there is none (``—``)."""

    line: int
    parameter: str | None
    env: str | None
    field: str | None
    default: str | None  # the literal default (`""` -> ""); None when the cell is prose


# --- reading the two sides ---------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in _PIPE.split(line.strip().strip("|"))]


def _name(cell: str) -> str | None:
    match = _CODE.match(cell)
    return match.group(1) if match else None


def _literal(cell: str) -> str | None:
    match = _CODE.match(cell)
    if not match or match.end() != len(cell):
        return None
    return "" if match.group(1) == '""' else match.group(1)


def parse_table(markdown: str) -> list[Row]:
    """The rows of the one table whose header names all four columns (AssertionError if not one)."""
    lines = markdown.splitlines()
    headers = [
        i
        for i, line in enumerate(lines)
        if line.lstrip().startswith("|")
        and {PARAMETER, ENV, FIELD, DEFAULT} <= {c.replace("`", "") for c in _cells(line)}
    ]
    assert len(headers) == 1, f"{DOC_NAME} must hold exactly one settings table, found {len(headers)}"
    header = [c.replace("`", "") for c in _cells(lines[headers[0]])]
    column = {name: header.index(name) for name in (PARAMETER, ENV, FIELD, DEFAULT)}
    rows = []
    for i in range(headers[0] + 2, len(lines)):  # skip the |---| line
        if not lines[i].lstrip().startswith("|"):
            break
        cells = _cells(lines[i])
        assert len(cells) == len(header), f"{DOC_NAME}:{i + 1}: {len(cells)} cells, the header has {len(header)}"
        rows.append(
            Row(
                line=i + 1,
                parameter=_name(cells[column[PARAMETER]]),
                env=_name(cells[column[ENV]]),
                field=_name(cells[column[FIELD]]),
                default=_literal(cells[column[DEFAULT]]),
            )
        )
    return rows


def template_env(template: dict[str, Any]) -> dict[str, Any]:
    """Every environment variable a function of the template receives -> its (template) value."""
    globals_ = template.get("Globals", {}).get("Function", {})
    env: dict[str, Any] = dict(globals_.get("Environment", {}).get("Variables", {}))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            env.update(resource.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    return env


def refs(value: Any) -> set[str]:
    """The names every ``Ref`` inside a template value points at."""
    if isinstance(value, dict):
        found = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        return found.union(*(refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    return set()


def env_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads for a field (its alias, else prefix + name)."""
    alias: Any = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        alias = next((choice for choice in alias.choices if isinstance(choice, str)), None)
    if isinstance(alias, str):
        return alias.upper()
    return (str(settings.model_config.get("env_prefix", "")) + name).upper()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _duplicates(rows: list[Row], attribute: str) -> list[str]:
    seen: dict[str, int] = {}
    found = []
    for row in rows:
        name = getattr(row, attribute)
        if name is None:
            continue
        if name in seen:
            found.append(f"{DOC_NAME}:{row.line}: `{name}` already has a row (line {seen[name]})")
        seen.setdefault(name, row.line)
    return found


# --- the checks ----------------------------------------------------------------------------------------
def problems(rows: list[Row], template: dict[str, Any], settings: type[BaseSettings]) -> list[str]:
    """Every way the table, the template and ``settings`` disagree (empty when they agree)."""
    found = [*_duplicates(rows, "parameter"), *_duplicates(rows, "env"), *_duplicates(rows, "field")]
    parameters: dict[str, Any] = template.get("Parameters", {})
    env = template_env(template)
    by_parameter = {row.parameter: row for row in rows if row.parameter}
    by_env = {row.env: row for row in rows if row.env}
    by_field = {row.field: row for row in rows if row.field}

    # template parameters <-> rows, and their defaults
    for name, spec in parameters.items():
        row = by_parameter.get(name)
        if row is None:
            found.append(f"parameter {name}: in template.yaml, missing from {DOC_NAME}")
        elif row.default != _text(spec.get("Default")):
            found.append(
                f"{DOC_NAME}:{row.line}: parameter {name} default {row.default!r}, "
                f"template.yaml says {_text(spec.get('Default'))!r}"
            )
    for name, row in by_parameter.items():
        if name not in parameters:
            found.append(f"{DOC_NAME}:{row.line}: parameter {name} is not a parameter of template.yaml")

    # environment variables <-> rows, and which parameter each one carries
    for name, value in env.items():
        row = by_env.get(name)
        if row is None:
            found.append(f"environment variable {name}: declared in template.yaml, missing from {DOC_NAME}")
            continue
        carried = refs(value) & parameters.keys()
        documented = {row.parameter} if row.parameter else set()
        if carried != documented:
            found.append(
                f"{DOC_NAME}:{row.line}: {name} documented as carrying {sorted(documented) or 'no parameter'}, "
                f"template.yaml passes {sorted(carried) or 'no parameter'}"
            )
        if not isinstance(value, dict | list) and row.parameter is None and row.default != _text(value):
            found.append(f"{DOC_NAME}:{row.line}: {name} default {row.default!r}, template.yaml sets {_text(value)!r}")
    for name, row in by_env.items():
        if name not in env:
            found.append(
                f"{DOC_NAME}:{row.line}: {name} is not declared in template.yaml (sam local would not pass it)"
            )
    for name, row in by_parameter.items():
        if row.env is None and any(name in refs(value) for value in env.values()):
            found.append(f"{DOC_NAME}:{row.line}: parameter {name} reaches the functions, the row names no variable")

    # Settings fields <-> rows, and the variable each field reads
    for name, field in settings.model_fields.items():
        variable = env_name(settings, name, field)
        row = by_field.get(name)
        if row is None:
            found.append(f"Settings.{name} ({variable}): missing from {DOC_NAME}")
        elif row.env != variable:
            found.append(f"{DOC_NAME}:{row.line}: Settings.{name} reads {variable}, the row says {row.env}")
        if variable not in env:
            found.append(f"Settings.{name} reads {variable}, which template.yaml does not declare")
    for name, row in by_field.items():
        if name not in settings.model_fields:
            found.append(f"{DOC_NAME}:{row.line}: Settings has no field {name}")
    return found


def template_default_settings(template: dict[str, Any], settings: type[BaseSettings]) -> BaseSettings:
    """``settings`` built from the values the template's defaults give each field's variable
    (fields whose value the template computes, such as the table name, get a placeholder)."""
    parameters: dict[str, Any] = template.get("Parameters", {})
    env = template_env(template)
    values: dict[str, str] = {}
    for name, field in settings.model_fields.items():
        value = env.get(env_name(settings, name, field))
        carried = refs(value) & parameters.keys()
        if not isinstance(value, dict | list):
            values[name] = _text(value)
        elif len(carried) == 1 and ("Ref" in value or "Fn::Join" in value):
            values[name] = _text(parameters[carried.pop()].get("Default"))
        elif field.is_required():
            values[name] = f"placeholder-{name}"
    return settings.model_validate(values)  # these values only, not the test process's environment


# --- tests ---------------------------------------------------------------------------------------------
def test_every_setting_has_one_row_that_agrees_with_the_template_and_settings() -> None:
    # Given the table, the template and the Settings model
    rows = parse_table(DOC.read_text(encoding="utf-8"))
    template = load_template(TEMPLATE)

    # When they are held against each other
    found = problems(rows, template, Settings)

    # Then they agree
    assert not found, "\n".join(found)


def test_the_template_defaults_are_the_settings_defaults() -> None:
    # Given the settings the template's default parameters produce
    settings = template_default_settings(load_template(TEMPLATE), Settings)

    # When each field with a default of its own is compared with it
    differ = {
        name: (getattr(settings, name), field.get_default(call_default_factory=True))
        for name, field in Settings.model_fields.items()
        if not field.is_required() and getattr(settings, name) != field.get_default(call_default_factory=True)
    }

    # Then a deployed stack and the code's own defaults configure the same broker
    assert not differ, f"template default vs Settings default: {differ}"


def test_a_parameter_missing_from_the_doc_is_reported() -> None:
    # Given the table without the row of one of the template's parameters
    text = DOC.read_text(encoding="utf-8")
    rows = parse_table(text)
    template = load_template(TEMPLATE)
    dropped = next(row for row in rows if row.parameter)
    rows = [row for row in rows if row is not dropped]

    # When it is checked
    found = problems(rows, template, Settings)

    # Then the missing parameter (and its variable and field, if any) is named
    assert f"parameter {dropped.parameter}: in template.yaml, missing from {DOC_NAME}" in found
    if dropped.env:
        assert any(p.startswith(f"environment variable {dropped.env}:") for p in found)


def test_a_setting_only_in_the_code_is_reported() -> None:
    # Given a Settings model with a field neither the table nor the template knows
    class Grown(Settings):
        brand_new_limit: int = 0

    # When it is checked
    found = problems(parse_table(DOC.read_text(encoding="utf-8")), load_template(TEMPLATE), Grown)

    # Then the field is missing from the table and its variable from the template
    assert f"Settings.brand_new_limit (BRAND_NEW_LIMIT): missing from {DOC_NAME}" in found
    assert "Settings.brand_new_limit reads BRAND_NEW_LIMIT, which template.yaml does not declare" in found


def test_a_wrong_default_in_the_doc_is_reported() -> None:
    # Given a template whose first parameter's default differs from the table's
    rows = parse_table(DOC.read_text(encoding="utf-8"))
    template = load_template(TEMPLATE)
    name = next(iter(template["Parameters"]))
    template["Parameters"][name]["Default"] = "something-else"

    # When it is checked
    found = problems(rows, template, Settings)

    # Then the disagreement is named
    assert any(f"parameter {name} default" in p for p in found)
