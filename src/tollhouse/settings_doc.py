"""The README's settings table, generated from the settings model so the two cannot drift.

python -m tollhouse.settings_doc          # print the table
python -m tollhouse.settings_doc --write  # rewrite it in README.md between the markers
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tollhouse.settings import ENV_PREFIX, Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(table)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, Path):
        return "per-user data dir"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _rows(model: type[BaseModel], prefix: str = "", env: bool = True) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        dotted = prefix + name
        env_name = f"{ENV_PREFIX}{dotted.upper().replace('.', '__')}" if env else "—"
        description = (field.description or "").replace("|", "\\|")
        inner = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, dotted + ".", env))
        elif (
            typing.get_origin(annotation) is tuple
            and inner
            and isinstance(inner[0], type)
            and issubclass(inner[0], BaseModel)
        ):
            rows.append((dotted, _default(field), "—", description))
            rows.extend(_rows(inner[0], dotted + ".", env=False))
        else:
            rows.append((dotted, _default(field), env_name, description))
    return rows


def table() -> str:
    lines = ["| setting | default | environment | meaning |", "|---|---|---|---|"]
    for dotted, default, env_name, description in _rows(Settings):
        env_cell = f"`{env_name}`" if env_name != "—" else "—"
        lines.append(f"| `{dotted}` | {default} | {env_cell} | {description} |")
    return "\n".join(lines)


def write(readme: Path) -> None:
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + table() + "\n" + text[end:])


if __name__ == "__main__":
    if "--write" in sys.argv:
        write(Path("README.md"))
    else:
        print(table())
