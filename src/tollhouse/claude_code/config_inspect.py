"""Claude Code's settings as it sees them: each scope, the merged result, hooks and their scripts.

Everything leaving this module goes through ``mask_tree``: settings carry ``env`` blocks and
hook scripts carry ``export API_KEY=…`` lines, and a dashboard is exactly where such values
end up on a screen or in a screenshot.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SCRIPT_LIMIT = 256 * 1024
SCRIPT_SUFFIXES = frozenset(
    {".sh", ".bash", ".zsh", ".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".ps1"}
)

_SECRET_KEY = re.compile(
    r"key|token|secret|passw(or)?d|passphrase|auth|credential|private|cookie|signature", re.I
)
_SECRET_PREFIX = re.compile(
    r"^(sk-|sk_|rk_|pk_live|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abposr]-|AKIA|ASIA|AIza|ya29\.|eyJ|"
    r"hf_|npm_|pypi-|th_|Bearer\s)"
)
_SECRET_IN_TEXT = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abposr]-[\w-]{10,}|"
    r"AKIA[0-9A-Z]{16}|AIza[\w-]{30,}|glpat-[\w-]{20,}|hf_[A-Za-z0-9]{20,}|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+)|"
    r"(?<=Bearer )[A-Za-z0-9._~+/\-]{12,}"
)
_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)S?[A-Za-z0-9_]*)"
    r"(?P<sep>\s*[=:]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"'$][^\s\"']{5,})",
    re.I,
)
_DESCRIPTION = re.compile(r"^\s*#+\s*Description:\s*(.+)$", re.I | re.M)


def _looks_random(value: str) -> bool:
    if len(value) < 24 or any(c.isspace() for c in value) or value.startswith(("/", "~", ".", "http")):
        return False
    if not (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    ):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.5


def looks_secret(key: str | None, value: str) -> bool:
    """A secret by its name (``GITHUB_TOKEN``) or by its shape (``sk-…``, long and random)."""
    if not value or value.startswith("$"):
        return False  # "${GITHUB_TOKEN}" is a reference, not the secret
    if _SECRET_PREFIX.match(value) or _looks_random(value):
        return True
    by_name = key is not None and bool(_SECRET_KEY.search(key))
    return by_name and not value.startswith(("/", "~", "./"))


def mask_value(value: str) -> str:
    """Keep a known key's prefix (it says which service the key is for), nothing of anything else."""
    return f"{value[:4]}…(masked)" if len(value) > 12 and _SECRET_PREFIX.match(value) else "…(masked)"


def mask_tokens(text: str) -> str:
    """Mask only unmistakable token shapes (``sk-…``, ``ghp_…``): safe on code and prose."""
    return _SECRET_IN_TEXT.sub(lambda m: mask_value(m.group(0)), text)


def mask_text(text: str) -> str:
    """Mask secrets inside free text: known token shapes and ``SOME_KEY=value`` assignments."""

    def masked(match: re.Match[str]) -> str:
        value = match.group("value")
        if "(masked)" in value:
            return match.group(0)
        return f"{match.group('name')}{match.group('sep')}{match.group('quote')}{mask_value(value)}"

    return _ASSIGNMENT.sub(masked, mask_tokens(text))


def mask_tree(value: Any, key: str | None = None) -> Any:
    """A copy of a JSON value with secret-looking strings masked; numbers and booleans stay."""
    if isinstance(value, dict):
        return {k: mask_tree(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_tree(v, key) for v in value]
    if isinstance(value, str):
        return mask_value(value) if looks_secret(key, value) else mask_text(value)
    return value


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(object, None), (None, None) when absent, or (None, reason) when unreadable or invalid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(data, dict):
        return None, "invalid JSON: the top level is not an object"
    return data, None


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Claude Code's merge: objects merge key by key, arrays concatenate (deduplicated), else override."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [v for v in value if v not in old]
        else:
            merged[key] = value
    return merged


def managed_settings_dir() -> Path:
    if sys.platform == "darwin":
        return Path("/Library/Application Support/ClaudeCode")
    if sys.platform == "win32":
        return Path("C:/Program Files/ClaudeCode")
    return Path("/etc/claude-code")


@dataclass(frozen=True, slots=True)
class Layer:
    scope: str  # global, global_local, project, local, managed
    path: Path
    data: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ConfigLocations:
    """Where the files live: the user config dir, the home, the project, the admin's managed dir."""

    config_dir: Path
    home: Path
    project: Path | None
    managed_dir: Path

    def layers(self) -> list[Layer]:
        paths = [
            ("global", self.config_dir / "settings.json"),
            ("global_local", self.config_dir / "settings.local.json"),
        ]
        if self.project is not None:
            paths += [
                ("project", self.project / ".claude" / "settings.json"),
                ("local", self.project / ".claude" / "settings.local.json"),
            ]
        paths.append(("managed", self.managed_dir / "managed-settings.json"))
        return [Layer(scope, path, *read_json(path)) for scope, path in paths]


def merged_config(where: ConfigLocations) -> dict[str, Any]:
    layers = where.layers()
    by_scope = {layer.scope: layer.data or {} for layer in layers}
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer.data or {})
    return {
        "global": mask_tree(merge(by_scope["global"], by_scope["global_local"])),
        "project": mask_tree(by_scope.get("project", {})),
        "local": mask_tree(by_scope.get("local", {})),
        "managed": mask_tree(by_scope["managed"]),
        "merged": mask_tree(merged),
        "projectPath": str(where.project) if where.project else None,
        "sources": [_source(layer) for layer in layers],
        "errors": [{"scope": x.scope, "path": str(x.path), "error": x.error} for x in layers if x.error],
    }


def _source(layer: Layer) -> dict[str, Any]:
    return {
        "scope": layer.scope,
        "path": str(layer.path),
        "exists": layer.data is not None,
        "error": layer.error,
    }


def list_hooks(where: ConfigLocations) -> dict[str, Any]:
    hooks: list[dict[str, Any]] = []
    layers = where.layers()
    for layer in layers:
        table = (layer.data or {}).get("hooks")
        if isinstance(table, dict):
            hooks.extend(_layer_hooks(layer, table, where))
    return {
        "hooks": hooks,
        "total": len(hooks),
        "errors": [{"scope": x.scope, "path": str(x.path), "error": x.error} for x in layers if x.error],
    }


def _layer_hooks(layer: Layer, table: Mapping[str, Any], where: ConfigLocations) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for event, groups in table.items():
        if not isinstance(groups, list):
            continue
        entries = [
            (g, h, group, hook)
            for g, group in enumerate(groups)
            if isinstance(group, dict)
            for h, hook in enumerate(group.get("hooks") or [])
            if isinstance(hook, dict)
        ]
        for g, h, group, hook in entries:
            command = hook.get("command") if isinstance(hook.get("command"), str) else None
            script = find_script(command, where) if command else None
            content, script_error = read_script(script) if script else (None, None)
            described = _DESCRIPTION.search(content or "")
            found.append(
                {
                    "name": event if len(entries) == 1 else f"{event}-{g}-{h}",
                    "event": event,
                    "type": hook.get("type", "command"),
                    "command": mask_text(command) if command else None,
                    "description": described.group(1).strip() if described else mask_text(command or ""),
                    "async": bool(hook.get("async", False)),
                    "timeout": hook.get("timeout"),
                    "cwd": hook.get("cwd"),
                    "matcher": group.get("matcher") or None,
                    "url": hook.get("url"),
                    "prompt": hook.get("prompt"),
                    "scriptPath": str(script) if script else None,
                    "scriptContent": content,
                    "scriptError": script_error,
                    "scope": "global" if layer.scope == "global_local" else layer.scope,
                    "source": str(layer.path),
                }
            )
    return found


def find_script(command: str, where: ConfigLocations) -> Path | None:
    """The script file a hook command runs, if any (``bash "$CLAUDE_PROJECT_DIR/.claude/x.sh"``)."""
    project = str(where.project or where.home)
    for name in ("${CLAUDE_PROJECT_DIR}", "$CLAUDE_PROJECT_DIR"):
        command = command.replace(name, project)
    for name in ("${HOME}", "$HOME"):
        command = command.replace(name, str(where.home))
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    for token in tokens:
        if token.startswith("~/"):
            token = str(where.home) + token[1:]
        path = Path(token)
        if not path.is_absolute() and "/" in token:
            path = Path(project) / path
        if path.suffix in SCRIPT_SUFFIXES and ("/" in token or path.exists()):
            return path
        if "/" in token and _is_script(path):
            return path
    return None


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def read_script(path: Path) -> tuple[str | None, str | None]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(SCRIPT_LIMIT + 1)
    except FileNotFoundError:
        return None, "not found"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    text = raw[:SCRIPT_LIMIT].decode("utf-8", errors="replace")
    suffix = "\n…(truncated)" if len(raw) > SCRIPT_LIMIT else ""
    return mask_text(text) + suffix, None


def config_dir_of(roots: Sequence[Path]) -> Path:
    """The root that holds the user's settings (the first with a settings file, else the first)."""
    for root in roots:
        if (root / "settings.json").exists() or (root / "settings.local.json").exists():
            return root
    return roots[0] if roots else Path.home() / ".claude"


def home_of(config_dir: Path) -> Path:
    """``~/.claude`` lives in the home; a custom ``CLAUDE_CONFIG_DIR`` says nothing about it."""
    return config_dir.parent if config_dir.name == ".claude" else Path.home()
