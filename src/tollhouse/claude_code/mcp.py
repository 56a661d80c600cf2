"""MCP servers from the files Claude Code really reads, plus Claude Desktop's for comparison.

Claude Code keeps user-scope servers at the top of ``~/.claude.json``, local-scope ones under
``projects[<path>].mcpServers`` in the same file, and project-scope ones in ``<project>/.mcp.json``;
on a name clash local beats project beats user. ccboard reads ``claude_desktop_config.json``,
which belongs to a different app; it is listed as scope ``desktop`` and never shadows anything.
Only the ``mcpServers`` parts of ``~/.claude.json`` are touched: the rest holds account data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollhouse.claude_code.config_inspect import mask_tree, read_json

_PRECEDENCE = {"local": 3, "project": 2, "user": 1}


@dataclass(frozen=True, slots=True)
class McpLocations:
    config_dir: Path
    home: Path
    managed_dir: Path

    def global_files(self) -> list[Path]:
        candidates = [self.config_dir / ".claude.json", self.home / ".claude.json"]
        return list(dict.fromkeys(candidates))

    def desktop_files(self) -> list[Path]:
        candidates = [
            self.home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json",
            self.home / ".config" / "Claude" / "claude_desktop_config.json",
            self.config_dir / "claude_desktop_config.json",
        ]
        appdata = os.environ.get("APPDATA")
        if appdata:
            candidates.append(Path(appdata) / "Claude" / "claude_desktop_config.json")
        return list(dict.fromkeys(candidates))


def known_projects(where: McpLocations) -> list[str]:
    """Project paths ``~/.claude.json`` knows about (Claude Code adds every folder it ran in)."""
    projects: list[str] = []
    for path in where.global_files():
        data, _ = read_json(path)
        table = (data or {}).get("projects")
        if isinstance(table, dict):
            projects.extend(str(p) for p in table)
    return projects


def list_servers(where: McpLocations, projects: Iterable[str]) -> dict[str, Any]:
    servers: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []

    def take(path: Path, scope: str, table: Any, project: str | None) -> None:
        if isinstance(table, dict):
            servers.extend(_server(name, spec, scope, path, project) for name, spec in table.items())

    def read(path: Path, scope: str) -> dict[str, Any] | None:
        data, error = read_json(path)
        if data is not None or error is not None:
            sources.append({"scope": scope, "path": str(path), "exists": data is not None, "error": error})
        return data

    for path in where.global_files():
        data = read(path, "user")
        if data is None:
            continue
        take(path, "user", data.get("mcpServers"), None)
        table = data.get("projects")
        for project, entry in table.items() if isinstance(table, dict) else ():
            if isinstance(entry, dict):
                take(path, "local", entry.get("mcpServers"), str(project))
    for project in dict.fromkeys([*projects, *known_projects(where)]):
        path = Path(project) / ".mcp.json"
        data = read(path, "project")
        if data is not None:
            take(path, "project", data.get("mcpServers"), project)
    managed = read(where.managed_dir / "managed-mcp.json", "managed")
    if managed is not None:
        take(where.managed_dir / "managed-mcp.json", "managed", managed.get("mcpServers"), None)
    for path in where.desktop_files():
        data = read(path, "desktop")
        if data is not None:
            take(path, "desktop", data.get("mcpServers"), None)
    _mark_shadowed(servers)
    return {
        "servers": servers,
        "total": len(servers),
        "sources": sources,
        "errors": [s for s in sources if s["error"]],
    }


def _server(name: str, spec: Any, scope: str, path: Path, project: str | None) -> dict[str, Any]:
    spec = spec if isinstance(spec, dict) else {}
    env = spec.get("env") if isinstance(spec.get("env"), dict) else {}
    headers = spec.get("headers") if isinstance(spec.get("headers"), dict) else {}
    url = spec.get("url") if isinstance(spec.get("url"), str) else None
    args = spec.get("args") if isinstance(spec.get("args"), list) else []
    return {
        "name": name,
        "scope": scope,
        "project": project,
        "source": str(path),
        "serverType": spec.get("type") or ("http" if url else "stdio"),
        "command": mask_tree(spec.get("command"), "command"),
        "args": mask_tree(args, "args"),
        "url": mask_tree(url, "url"),
        "env": mask_tree(env),
        "headers": mask_tree(headers),
        "hasEnv": bool(env),
        "disabled": bool(spec.get("disabled", False)),
        "shadowedBy": [],
    }


def _mark_shadowed(servers: list[dict[str, Any]]) -> None:
    """Fill ``shadowedBy``: which same-named servers win over each one, and in which project."""
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for server in servers:
        if server["scope"] in _PRECEDENCE:
            by_name.setdefault(server["name"], []).append(server)
    for server in servers:
        rank = _PRECEDENCE.get(server["scope"])
        if rank is None:
            continue
        for other in by_name[server["name"]]:
            other_rank = _PRECEDENCE[other["scope"]]
            same_project = server["project"] is None or server["project"] == other["project"]
            if other is not server and other_rank > rank and same_project:
                server["shadowedBy"].append({"scope": other["scope"], "project": other["project"]})
