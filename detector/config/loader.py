"""YAML with `!secret NAME` (from secrets.yaml beside the config) and `!env VAR[:default]`.

Only these two tags are added, on a SafeLoader subclass built per file, so nothing global
changes. Every problem of a file is collected before ConfigError is raised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from detector.errors import ConfigError

SECRETS_FILE = "secrets.yaml"


class Secret(str):
    """A string whose value never shows in repr(): dataclass reprs and logs show stars.

    str() and formatting still give the value, for the code that needs it.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


class UnresolvedSecret(Secret):
    """A `!secret` or `!env` an offline command does not need (replay, eval, bench, optimize
    never connect to the broker or the API): it stands in for the value, which is unknown."""

    __slots__ = ()


def _where(path: Path, mark: Any) -> str:
    return f"{path}, line {mark.line + 1}, column {mark.column + 1}"


def _read_secrets(path: Path) -> dict[Any, Any]:
    """The secrets file; its values never appear in errors (only the problem and its place)."""
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except yaml.MarkedYAMLError as err:
        where = _where(path, err.problem_mark) if err.problem_mark else str(path)
        raise ConfigError([f"{where}: invalid YAML: {err.problem}"]) from None
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError([f"{path}: cannot read the secrets file: {type(err).__name__}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of name: value"])
    return data


_MERGE_TAG = "tag:yaml.org,2002:merge"
# A config is a few levels deep and a few hundred values; these bounds refuse a YAML bomb
# (aliases of aliases that expand exponentially) and a nesting that would exhaust Python's
# recursion before anything is built from it.
MAX_DEPTH = 50
MAX_EXPANDED_NODES = 100_000
# Larger files are refused before they are parsed (they would hold more values than the bound
# above: checking them would already cost seconds and hundreds of megabytes).
MAX_FILE_BYTES = 2 * 1024 * 1024


class _TooBig(yaml.YAMLError):
    """The document is beyond MAX_DEPTH or MAX_EXPANDED_NODES."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with `!secret` and `!env`, refusing duplicate keys."""

    config_path: Path
    problems: list[str]
    secrets: dict[Any, Any] | None
    # False: a secret that cannot be resolved is an UnresolvedSecret, not a problem.
    secrets_required: bool = True

    def secret_values(self) -> dict[Any, Any] | None:
        """The secrets file beside the config, read once; None when it does not exist."""
        if self.secrets is None:
            path = self.config_path.parent / SECRETS_FILE
            if not path.is_file():
                return None
            self.secrets = _read_secrets(path)
        return self.secrets

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """A node, refusing nesting beyond MAX_DEPTH (the composer recurses per level)."""
        depth = getattr(self, "_depth", 0) + 1
        if depth > MAX_DEPTH:
            raise _TooBig(f"the document is nested deeper than {MAX_DEPTH} levels")
        self._depth = depth
        try:
            return super().compose_node(parent, index)  # type: ignore[return-value]
        finally:
            self._depth = depth - 1

    def compose_document(self) -> yaml.Node | None:
        """The document's node tree, refused when aliases expand it beyond a bound."""
        node: yaml.Node | None = super().compose_document()
        if node is not None:
            _check_expanded_size(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; a key given twice is a problem (YAML would silently keep the last)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *anchor` keys may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                self.problems.append(
                    f"{_where(self.config_path, key_node.start_mark)}: {key!r} is given twice"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _secret(loader: _Loader, node: yaml.Node) -> Secret | None:
    name = loader.construct_scalar(node)  # type: ignore[arg-type]
    values = loader.secret_values()
    secrets_path = loader.config_path.parent / SECRETS_FILE
    where = _where(loader.config_path, node.start_mark)
    if (values is None or name not in values) and not loader.secrets_required:
        return UnresolvedSecret(f"<!secret {name}>")
    if values is None:
        loader.problems.append(
            f"{where}: !secret {name}: {secrets_path} does not exist "
            f"(create it with a line `{name}: <value>`)"
        )
        return None
    if name not in values:
        loader.problems.append(f"{where}: !secret {name}: no such secret in {secrets_path}")
        return None
    value = values[name]
    if isinstance(value, bool):
        return Secret(str(value).lower())
    if not isinstance(value, str | int | float):
        loader.problems.append(
            f"{where}: !secret {name}: expected a text or number value in {secrets_path}"
        )
        return None
    return Secret(value)


def _env(loader: _Loader, node: yaml.Node) -> Secret | None:
    spec = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    name, has_default, default = spec.partition(":")
    value = os.environ.get(name)
    if value is None and not has_default and not loader.secrets_required:
        return UnresolvedSecret(f"<!env {name}>")
    if value is None and not has_default:
        loader.problems.append(
            f"{_where(loader.config_path, node.start_mark)}: !env {name}: environment variable "
            f"not set (give a default with !env {name}:value)"
        )
        return None
    return Secret(default if value is None else value)


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of the tree as if every alias were copied (memoised per node, so a
    bomb costs one visit per distinct node)."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [root]
    while stack:  # post-order without recursion: children before their parent
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0
        order.append(node)
        stack.extend(_children(node))
    for node in reversed(order):
        total = 1 + sum(sizes[id(child)] for child in _children(node))
        if total > MAX_EXPANDED_NODES:
            raise _TooBig(
                f"the document holds more than {MAX_EXPANDED_NODES} values once its aliases"
                " are expanded"
            )
        sizes[id(node)] = total


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


_Loader.add_constructor("!secret", _secret)
_Loader.add_constructor("!env", _env)


def load_yaml(path: Path, *, secrets_required: bool = True) -> Any:
    """Parse a config file; ConfigError for a missing file, invalid YAML (with line and column),
    a missing secret, an unset environment variable or a duplicate key.

    `secrets_required` False (offline commands): a secret that cannot be resolved (no
    secrets.yaml, an unset variable) is an UnresolvedSecret instead of an error."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such configuration file"])
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the configuration: {err}"]) from None
    if size > MAX_FILE_BYTES:
        # Parsed before any limit of the schema applies: a file of a million mask points
        # took 73 s and 2.3 GB before being refused.
        raise ConfigError(
            [
                f"{path}: refused: {size} bytes, more than {MAX_FILE_BYTES} (a configuration of"
                " a hundred cameras with their masks fits in a tenth of it)"
            ]
        )
    try:
        with path.open(encoding="utf-8") as stream:
            loader = _Loader(stream)
            loader.config_path = path
            loader.problems = []
            loader.secrets = None
            loader.secrets_required = secrets_required
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.MarkedYAMLError as err:
        where = _where(path, err.problem_mark) if err.problem_mark else str(path)
        raise ConfigError([f"{where}: invalid YAML: {err.problem}"]) from None
    except _TooBig as err:
        raise ConfigError([f"{path}: refused: {err}"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError([f"{path}: cannot read the configuration: {err}"]) from None
    if loader.problems:
        raise ConfigError(loader.problems)
    return data
