"""Agents, slash commands and skills: Markdown files with YAML front matter, user and project scope.

Front matter in the wild is sometimes broken YAML (ccboard's own ``ship`` skill has two keys
on one line), so a parse failure falls back to line-wise ``key: value`` and is reported on the
item instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tollhouse.claude_code.config_inspect import mask_tree

MAX_FILE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AssetLocations:
    config_dir: Path
    project: Path | None

    def scopes(self) -> list[tuple[str, Path]]:
        scopes = [("user", self.config_dir)]
        if self.project is not None:
            scopes.append(("project", self.project / ".claude"))
        return scopes


def split_front_matter(text: str) -> tuple[dict[str, Any], str, str | None]:
    """(front matter, body, error) of a Markdown file; no ``---`` block means empty front matter."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text, None
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}, text, "front matter is not closed by ---"
    block = "".join(lines[1:end])
    body = "".join(lines[end + 1 :]).lstrip("\n")
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        return _line_wise(block), body, f"invalid YAML: {str(exc).splitlines()[0]}"
    if data is None:
        return {}, body, None
    if not isinstance(data, dict):
        return {}, body, "front matter is not a mapping"
    return _jsonable(data), body, None


def _line_wise(block: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-", "#")):
            result[key.strip()] = value.strip().strip("\"'")
    return result


def _jsonable(value: Any) -> Any:
    """YAML dates and other scalars become strings, so the answer is always valid JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _item(name: str, path: Path, scope: str) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "frontmatter": {}, "body": "", "path": str(path), "scope": scope}
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE)
    except OSError as exc:
        item["error"] = f"unreadable: {exc.strerror or exc}"
        return item
    front, body, error = split_front_matter(raw.decode("utf-8", errors="replace"))
    item["frontmatter"] = mask_tree(front)
    item["body"] = body
    if error:
        item["error"] = error
    return item


def _markdown(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*.md") if p.is_file() or p.is_symlink())


def list_agents(where: AssetLocations) -> dict[str, Any]:
    items = [
        _item(path.stem, path, scope) for scope, base in where.scopes() for path in _markdown(base / "agents")
    ]
    return {"items": items, "total": len(items)}


def list_commands(where: AssetLocations) -> dict[str, Any]:
    """Sub-folders namespace commands: ``commands/git/commit.md`` is ``/git:commit``."""
    items = []
    for scope, base in where.scopes():
        folder = base / "commands"
        for path in _markdown(folder):
            name = ":".join(path.relative_to(folder).with_suffix("").parts)
            items.append(_item(name, path, scope))
    return {"items": items, "total": len(items)}


def list_skills(where: AssetLocations) -> dict[str, Any]:
    items = []
    for scope, base in where.scopes():
        folder = base / "skills"
        if not folder.is_dir():
            continue
        for skill in sorted(p for p in folder.iterdir() if p.is_dir()):
            manifest = skill / "SKILL.md"
            if manifest.exists() or manifest.is_symlink():
                items.append(_item(skill.name, manifest, scope))
    return {"items": items, "total": len(items)}
