"""YAML with `!secret NAME` (from secrets.yaml beside the config) and `!env VAR[:default]`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from detector.errors import ConfigError

SECRETS_FILE = "secrets.yaml"


class Secret(str):
    """A string that never shows its value in repr(), logs of dataclasses or error messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _make_loader(config_path: Path) -> type[yaml.SafeLoader]:
    """A SafeLoader subclass that resolves secrets relative to `config_path`."""
    secrets_path = config_path.parent / SECRETS_FILE
    cache: dict[str, Any] = {}

    def secrets() -> dict[str, Any]:
        if "data" not in cache:
            if not secrets_path.is_file():
                cache["data"] = None
            else:
                try:
                    with secrets_path.open(encoding="utf-8") as stream:
                        data = yaml.safe_load(stream) or {}
                except yaml.YAMLError as err:
                    raise ConfigError([f"{secrets_path}: invalid YAML: {err}"]) from err
                if not isinstance(data, dict):
                    raise ConfigError([f"{secrets_path}: expected a mapping of name: value"])
                cache["data"] = data
        result: dict[str, Any] | None = cache["data"]
        if result is None:
            raise ConfigError([f"{config_path}: uses !secret but {secrets_path} does not exist"])
        return result

    def secret(loader: yaml.SafeLoader, node: yaml.Node) -> Secret:
        name = loader.construct_scalar(node)  # type: ignore[arg-type]
        values = secrets()
        if name not in values:
            raise ConfigError(
                [f"{config_path}, {_line(node)}: !secret {name}: no such secret in {secrets_path}"]
            )
        return Secret(str(values[name]))

    def env(loader: yaml.SafeLoader, node: yaml.Node) -> Secret:
        spec = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        name, has_default, default = spec.partition(":")
        value = os.environ.get(name)
        if value is None:
            if not has_default:
                raise ConfigError(
                    [f"{config_path}, {_line(node)}: !env {name}: environment variable not set"]
                )
            value = default
        return Secret(value)

    class Loader(yaml.SafeLoader):
        """SafeLoader with the two tags."""

    Loader.add_constructor("!secret", secret)
    Loader.add_constructor("!env", env)
    return Loader


def load_yaml(path: Path) -> Any:
    """Parse a config file; ConfigError for a missing file or invalid YAML (with line/column)."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such configuration file"])
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.load(stream, Loader=_make_loader(path))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError([f"{path}, {where}: invalid YAML: {err.problem}"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML: {err}"]) from err
