"""Print the Python requirements a Home Assistant version needs for what the tests run.

Run with the Python of the Home Assistant venv being built (scripts/ha-envs.sh), after
Home Assistant's own dependencies are installed:

    python scripts/ha_requirements.py CUSTOM_MANIFEST DOMAIN...

A real Home Assistant installs integration packages (e.g. `home-assistant-frontend` for
`frontend`) at its first boot, into its own venv; pytest-homeassistant-custom-component
installs none. The test environments must not depend on such a boot having happened, so they
are built with everything up front, and Home Assistant then runs with `--skip-pip`.

What is needed is found the way Home Assistant's own requirements manager finds it: starting
from the integrations its bootstrap sets up on every start (core, logging, frontend and the
default integrations), the domains given (what the tests configure) and the custom
integration's manifest, every `dependencies` and `after_dependencies` entry is followed, as is
each discovery key of a manifest (an `mqtt` key needs the `mqtt` integration, `zeroconf`
needs `zeroconf` and `homekit`), and the `requirements` of every integration reached are
printed, one per line, sorted. Install them under Home Assistant's own
`package_constraints.txt`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _domains(value: Any) -> set[str]:
    """Every domain name inside a bootstrap constant (sets, tuples of stages, dicts)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_domains(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple | set | frozenset):
        return set().union(*(_domains(v) for v in value)) if value else set()
    return set()


def bootstrap_domains() -> set[str]:
    """The integrations Home Assistant's bootstrap sets up without being configured."""
    from homeassistant import bootstrap, requirements

    names = (
        "CORE_INTEGRATIONS",
        "LOGGING_AND_HTTP_DEPS_INTEGRATIONS",
        "FRONTEND_INTEGRATIONS",
        "DEFAULT_INTEGRATIONS",
    )
    found = set().union(*(_domains(getattr(bootstrap, name, ())) for name in names))
    if not {"frontend", "homeassistant"} <= found:
        raise SystemExit(f"ha_requirements: Home Assistant's bootstrap changed: {sorted(found)}")
    del requirements  # imported only to fail early when the module moved
    return found


def discovery_keys() -> dict[str, tuple[str, ...]]:
    """Manifest keys that make the requirements manager process another integration."""
    from homeassistant import requirements

    return {k: tuple(v) for k, v in requirements.DISCOVERY_INTEGRATIONS.items()}


def walk(
    components: Path,
    roots: set[str],
    extra: list[dict[str, Any]],
    keys: dict[str, tuple[str, ...]],
) -> list[str]:
    """The requirements of `roots`, of the `extra` manifests and of everything they lead to
    (`keys`: a manifest key that leads to more integrations, as `discovery_keys`)."""
    seen: set[str] = set()
    todo = sorted(roots)
    found: set[str] = set()
    manifests = list(extra)
    while manifests or todo:
        if manifests:
            manifest = manifests.pop()
        else:
            domain = todo.pop()
            if domain in seen:
                continue
            seen.add(domain)
            path = components / domain / "manifest.json"
            if not path.exists():
                # A domain of the config that is not an integration (e.g. `homeassistant:` is
                # one, `default_config` may be absent): nothing to install.
                continue
            manifest = json.loads(path.read_text())
        found.update(manifest.get("requirements", []))
        nexts = [*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])]
        for key, domains in keys.items():
            if any(check in manifest for check in domains):
                nexts.append(key)
        todo.extend(d for d in nexts if d not in seen)
    return sorted(found)


def main() -> None:
    """Entry point."""
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    custom = json.loads(Path(sys.argv[1]).read_text())
    import homeassistant.components

    components = Path(homeassistant.components.__path__[0])
    roots = bootstrap_domains() | set(sys.argv[2:])
    for line in walk(components, roots, [custom], discovery_keys()):
        print(line)


if __name__ == "__main__":
    main()
