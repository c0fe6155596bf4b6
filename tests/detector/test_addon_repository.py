"""The add-on repository (repository.yaml, addon/) against the Home Assistant Supervisor's rules.

The Supervisor reads an add-on repository by rules written in home-assistant/supervisor
(supervisor/addons/validate.py and options.py, store/data.py, store/validate.py, const.py):
what a config.yaml may hold, how options are checked against the schema, where add-ons are
found, what build.yaml and translations hold. The checks below are written from those rules
(read through the project's search tool; none of its code is copied). The Supervisor drops
unknown keys silently, so here an unknown key fails: it would be a typo the Supervisor ignores.

Also checked: that the add-on folder can build the detector of this very checkout (the
committed wheel matches the sources), that its options are the ones the entry point converts,
and that their ranges are the detector's.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from PIL import Image

from detector import __version__
from detector.config.detection import SCENES, THRESHOLD_MAX, THRESHOLD_MIN
from detector.config.logs import LOG_LEVELS
from detector.container import (
    CAMERA_OPTIONS,
    OPTIONS_SCHEMA,
    PYRONEAR_OPTIONS,
    write_checked_config,
)
from detector.container import addon_config as convert
from detector.supervisor import Broker
from tests.detector.mqtt_helpers import REPO

ADDON = REPO / "addon"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# supervisor/const.py: every architecture the Supervisor knows; the deprecated ones warn.
ARCHES = {"armhf", "armv7", "aarch64", "amd64", "i386"}
DEPRECATED_ARCHES = {"armhf", "armv7", "i386"}
STARTUP = {"initialize", "system", "services", "application", "once"}
BOOT = {"auto", "manual", "manual_only"}
STAGE = {"stable", "experimental", "deprecated"}
# supervisor/addons/const.py RE_SLUG, validate.py RE_SERVICE and RE_VOLUME (string form).
SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
SERVICE = re.compile(r"^(mqtt|mysql):(provide|want|need)$")
MAP_TYPES = (
    "data|config|ssl|addons|backup|share|media|homeassistant_config|all_addon_configs|addon_config"
)
VOLUME = re.compile(rf"^({MAP_TYPES})(?::(rw|ro))?$")
# validate.py RE_DOCKER_IMAGE_BUILD: a base image in build.yaml needs a namespace.
BUILD_IMAGE = re.compile(r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$")
# options.py RE_SCHEMA_ELEMENT: one option's type (a trailing ? makes it optional).
ELEMENT = re.compile(
    r"^(?:"
    r"|bool|email|url|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?"
    r"|float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
# validate.py _SCHEMA_ADDON_CONFIG: the keys a config.yaml may have (more are dropped).
CONFIG_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
    "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress",
    "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title",
    "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts",
    "host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor",
    "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules",
    "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy",
    "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "backup", "options", "schema", "image", "ulimits", "timeout", "journald",
    "breaking_versions",
}  # fmt: skip
BOOLEAN_KEYS = {
    "init", "advanced", "ingress", "ingress_stream", "panel_admin", "host_network", "host_pid",
    "host_ipc", "host_uts", "host_dbus", "udev", "tmpfs", "apparmor", "full_access", "audio",
    "video", "gpio", "usb", "uart", "devicetree", "kernel_modules", "realtime", "hassio_api",
    "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api", "journald",
}  # fmt: skip


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def is_url(value: Any) -> bool:
    """voluptuous' Url(): a scheme and a network location."""
    parts = urlsplit(str(value))
    return bool(parts.scheme and parts.netloc)


# -- the Supervisor's schema language -------------------------------------------------------


def schema_problems(schema: Any, where: str, in_list: bool = False) -> list[str]:
    """validate.py SCHEMA_ELEMENT: a type string, a list of one element (a type or a dict,
    never a list), or a dict of elements."""
    if isinstance(schema, str):
        return [] if ELEMENT.match(schema) else [f"{where}: unknown type {schema!r}"]
    if isinstance(schema, list):
        if in_list or len(schema) != 1 or isinstance(schema[0], list):
            return [f"{where}: a list holds exactly one element, and not a list"]
        return schema_problems(schema[0], f"{where}[]", in_list=True)
    if isinstance(schema, dict):
        return [
            problem
            for key, value in schema.items()
            for problem in (
                [f"{where}: key {key!r} is not a string"] if not isinstance(key, str) else []
            )
            + schema_problems(value, f"{where}.{key}")
        ]
    return [f"{where}: {schema!r} is not a schema element"]


def _in_range(value: float, match: re.Match[str], low: str, high: str) -> bool:
    minimum, maximum = match.group(low), match.group(high)
    return (minimum is None or value >= float(minimum)) and (
        maximum is None or value <= float(maximum)
    )


def option_problems(schema: Any, value: Any, where: str) -> list[str]:
    """options.py AddonOptions: how the Supervisor checks a value against its schema element
    (the unknown keys it would drop with a warning are reported too)."""
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            p
            for i, item in enumerate(value)
            for p in option_problems(schema[0], item, f"{where}[{i}]")
        ]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        problems = [f"{where}.{key}: not in the schema" for key in value if key not in schema]
        for key, element in schema.items():
            if key in value:
                problems += option_problems(element, value[key], f"{where}.{key}")
                continue
            single = element[0] if isinstance(element, list) and element else element
            if not (isinstance(single, str) and single.endswith("?")):
                problems.append(f"{where}.{key}: missing (required by the schema)")
        return problems
    match = ELEMENT.match(schema)
    assert match is not None, schema
    kind = schema.rstrip("?")
    if value is None:
        return [f"{where}: missing"]
    if kind.startswith(("str", "password")):
        length = len(str(value))
        ok = _in_range(length, match, "s_min", "s_max") and _in_range(
            length, match, "p_min", "p_max"
        )
    elif kind.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and _in_range(value, match, "i_min", "i_max")
    elif kind.startswith("float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and _in_range(float(value), match, "f_min", "f_max")
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "url":
        ok = is_url(value)
    elif kind == "port":
        ok = isinstance(value, int) and 1 <= value <= 65535
    elif kind == "email":
        ok = bool(re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", str(value)))
    elif kind.startswith("match"):
        ok = re.match(match.group("match"), str(value)) is not None
    elif kind.startswith("list"):
        ok = str(value) in match.group("list").split("|")
    else:
        return [f"{where}: type {kind} is not checked here"]
    return [] if ok else [f"{where}: {value!r} is not a {schema}"]


def test_the_schema_checks_can_fail() -> None:
    """The checker above refuses what the Supervisor refuses."""
    assert schema_problems({"a": "string", "b": [["str"]], "c": ["int", "str"]}, "s") == [
        "s.a: unknown type 'string'",
        "s.b: a list holds exactly one element, and not a list",
        "s.c: a list holds exactly one element, and not a list",
    ]
    schema = {"t": "float(0.05,0.95)", "n": "int(1,)?", "l": "list(a|b)", "d": [{"id": "str"}]}
    assert option_problems(schema, {"t": 1.5, "l": "c", "d": [{}], "x": 1}, "o") == [
        "o.x: not in the schema",
        "o.t: 1.5 is not a float(0.05,0.95)",
        "o.l: 'c' is not a list(a|b)",
        "o.d[0].id: missing (required by the schema)",
    ]


# -- repository.yaml and the add-on folder ---------------------------------------------------


def tracked_files() -> list[Path]:
    """The files the Supervisor gets: it clones the repository with git."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [Path(line) for line in out.splitlines()]


def test_repository_yaml() -> None:
    """store/validate.py: name required; url a URL; maintainer text; nothing else."""
    repository = load(REPO / "repository.yaml")
    assert set(repository) <= {"name", "url", "maintainer"}, repository
    assert isinstance(repository["name"], str) and repository["name"]
    assert is_url(repository["url"]) and isinstance(repository["maintainer"], str)


def test_the_repository_holds_exactly_one_addon() -> None:
    """store/data.py: every config.yaml/.yml/.json at any depth (outside folders named with a
    leading dot or rootfs) is read as an add-on; only addon/config.yaml may be one."""
    found = [
        path
        for path in tracked_files()
        if path.stem == "config"
        and path.suffix in {".yaml", ".yml", ".json"}
        and not any(part.startswith(".") or part == "rootfs" for part in path.parts)
    ]
    assert found == [Path("addon/config.yaml")]


def test_config_yaml_follows_the_supervisors_rules() -> None:
    config = load(ADDON / "config.yaml")
    assert set(config) <= CONFIG_KEYS, set(config) - CONFIG_KEYS
    for key in ("name", "slug", "description"):
        assert isinstance(config[key], str) and config[key], key
    assert isinstance(config["version"], str)  # unquoted, 0.10 would be read as a float
    assert SLUG.match(config["slug"])
    assert set(config["arch"]) <= ARCHES and not set(config["arch"]) & DEPRECATED_ARCHES
    assert {"amd64", "aarch64"} <= set(config["arch"])
    assert config["startup"] in STARTUP and config["startup"] == "services"
    assert config.get("boot", "auto") in BOOT and config.get("stage", "stable") in STAGE
    assert all(isinstance(config[key], bool) for key in BOOLEAN_KEYS & set(config))
    assert config["init"] is False  # the entry point is PID 1 and handles SIGTERM
    assert all(SERVICE.match(service) for service in config["services"])
    assert "mqtt:need" in config["services"]
    assert all(VOLUME.match(entry) for entry in config["map"]), config["map"]
    assert is_url(config["url"])
    assert 10 <= config.get("timeout", 10) <= 300
    assert schema_problems(config["schema"], "schema") == []
    assert option_problems(config["schema"], config["options"], "options") == []


def test_the_version_is_the_packages() -> None:
    config = load(ADDON / "config.yaml")
    assert config["version"] == PYPROJECT["project"]["version"] == __version__
    assert f"## {__version__}" in (ADDON / "CHANGELOG.md").read_text()


def test_build_yaml_names_a_debian_base_per_architecture() -> None:
    """validate.py SCHEMA_BUILD_CONFIG: build_from per known architecture, images with a
    namespace; here one per architecture of config.yaml, and the Dockerfile's default."""
    build = load(ADDON / "build.yaml")
    assert set(build) <= {"build_from", "squash", "args", "labels"}
    assert set(build["build_from"]) == set(load(ADDON / "config.yaml")["arch"])
    dockerfile = (ADDON / "Dockerfile").read_text()
    default = re.search(r"^ARG BUILD_FROM=(\S+)$", dockerfile, re.M)
    assert default is not None
    for image in build["build_from"].values():
        assert BUILD_IMAGE.match(image) and "debian" in image
        assert image == default.group(1)


def test_dockerfile_builds_from_the_addon_folder_alone() -> None:
    """The Supervisor's build context is the add-on folder: every COPY source is in it."""
    dockerfile = (ADDON / "Dockerfile").read_text()
    lines = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    assert lines[0].startswith("ARG BUILD_FROM=") and lines[1] == "FROM ${BUILD_FROM}"
    assert dockerfile.count("\nFROM ") == 1
    for copy in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        *sources, _ = copy.split()
        for source in sources:
            assert (ADDON / source).exists() and ADDON in (ADDON / source).resolve().parents
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"smokewatch\", \"health\"\]", dockerfile, re.M)
    assert 'ENTRYPOINT ["smokewatch"]' in dockerfile and 'CMD ["container"]' in dockerfile


def translation_problems(schema: Any, translated: Any, where: str) -> list[str]:
    """Every option (nested ones too) has a name and a description, and nothing else is
    translated (validate.py SCHEMA_ADDON_TRANSLATIONS: name, description, fields)."""
    if isinstance(schema, list):
        schema = schema[0]
    if not isinstance(schema, dict):
        return []
    translated = translated or {}
    problems = [f"{where}.{key}: no such option" for key in translated if key not in schema]
    for key, element in schema.items():
        entry = translated.get(key)
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("description"):
            problems.append(f"{where}.{key}: needs a name and a description")
            continue
        problems += [
            f"{where}.{key}.{extra}: unknown"
            for extra in set(entry) - {"name", "description", "fields"}
        ]
        problems += translation_problems(element, entry.get("fields"), f"{where}.{key}")
    return problems


def test_translations_name_and_describe_every_option() -> None:
    schema = load(ADDON / "config.yaml")["schema"]
    for path in (ADDON / "translations").iterdir():
        translations = load(path)
        assert set(translations) <= {"configuration", "network"}, path
        assert translation_problems(schema, translations["configuration"], path.name) == []


def test_store_pages_and_images() -> None:
    """The Add-on Store shows DOCS.md, CHANGELOG.md, icon.png (128x128) and logo.png."""
    assert "mqtt" in (ADDON / "DOCS.md").read_text().lower()
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG" and logo.size[0] <= 250 and logo.size[1] <= 100


# -- what the add-on installs and runs -------------------------------------------------------


def wheel_path() -> Path:
    wheels = sorted((ADDON / "wheels").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_is_this_checkouts_detector() -> None:
    """addon/wheels/ holds the detector the add-on installs: the very sources of this checkout.
    After changing detector/ or the package's metadata, run scripts/addon_wheel.py."""
    fix = "the add-on's wheel is out of date: run .venv/bin/python scripts/addon_wheel.py"
    with zipfile.ZipFile(wheel_path()) as wheel:
        names = set(wheel.namelist())
        packaged = {name for name in names if name.startswith("detector/")}
        sources = {
            path.relative_to(REPO).as_posix()
            for path in (REPO / "detector").rglob("*.py")
            if "__pycache__" not in path.parts
        }
        assert packaged == sources, f"{fix}: {sorted(packaged ^ sources)[:10]}"
        changed = [
            name for name in sorted(sources) if wheel.read(name) != (REPO / name).read_bytes()
        ]
        assert not changed, f"{fix}: {changed[:10]}"
        dist_info = next(
            name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA")
        )
        metadata = Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert metadata["Version"] == __version__, fix
    assert metadata["Requires-Python"] == PYPROJECT["project"]["requires-python"], fix
    runtime = sorted(
        str(Requirement(r)) for r in metadata.get_all("Requires-Dist") if "extra ==" not in r
    )
    assert runtime == sorted(str(Requirement(r)) for r in PYPROJECT["project"]["dependencies"]), fix
    assert "smokewatch = detector.cli:main" in entry_points, fix


def test_requirements_pin_every_runtime_dependency_but_the_demos_broker() -> None:
    """requirements.txt: one exact version per dependency of the wheel (amqtt aside: only
    `smokewatch demo` runs that broker), each within the wheel's own specifier."""
    pins = {}
    for line in (ADDON / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name.lower().replace("_", "-")] = spec.version
    for dependency in PYPROJECT["project"]["dependencies"]:
        wanted = Requirement(dependency)
        name = wanted.name.lower().replace("_", "-")
        if name == "amqtt":
            assert name not in pins
            continue
        assert name in pins, f"{name} is not pinned in addon/requirements.txt"
        assert wanted.specifier.contains(pins[name]), (name, pins[name], str(wanted.specifier))


def test_the_schema_is_the_options_the_entry_point_reads() -> None:
    """Every option of config.yaml is one detector/container.py converts, and back."""

    def keys(schema: Any) -> set[str]:
        return {str(getattr(key, "schema", key)) for key in schema.schema}

    addon_schema = load(ADDON / "config.yaml")["schema"]
    assert set(addon_schema) == keys(OPTIONS_SCHEMA)
    assert set(addon_schema["cameras"][0]) == keys(CAMERA_OPTIONS)
    assert set(addon_schema["pyronear"]) == keys(PYRONEAR_OPTIONS)


def test_the_option_ranges_are_the_detectors() -> None:
    schema = load(ADDON / "config.yaml")["schema"]
    assert schema["threshold"] == f"float({THRESHOLD_MIN},{THRESHOLD_MAX})"
    assert schema["cameras"][0]["threshold"] == f"float({THRESHOLD_MIN},{THRESHOLD_MAX})?"
    assert schema["scene"] == f"list({'|'.join(SCENES)})"
    assert schema["cameras"][0]["scene"] == f"list({'|'.join(SCENES)})?"
    assert schema["log_level"] == f"list({'|'.join(LOG_LEVELS)})"
    assert schema["nb_frames"] == "int(1,50)?"  # detection.nb_frames: integer(1, 50)


@pytest.mark.parametrize("source", ["default options", "every option"])
def test_the_options_make_a_valid_config(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Supervisor's defaults, and every option set, pass the detector's checks."""
    schema = load(ADDON / "config.yaml")["schema"]
    options = load(ADDON / "config.yaml")["options"]
    if source == "every option":
        options["cameras"][0].update(
            topic="cameras/backyard/jpeg", scene="horizon", threshold=0.3, interval=10,
            pyronear_pose_id=3, pyronear_token="t", frigate_events=False,
        )  # fmt: skip
        options["cameras"].append({"id": "gate", "snapshot_url": "http://cam/snap.jpg"})
        options["cameras"].append(
            {"id": "drive", "frigate_camera": "drive", "frigate_events": True}
        )
        options.update(nb_frames=4, topic_prefix="sw", frigate_url="http://frigate:5000")
        options["pyronear"]["enabled"] = True
    assert option_problems(schema, options, "options") == []
    addon = convert(options, Broker("core-mosquitto", 1883, "addons", "pw"), tmp_path)
    for name in addon.env:  # write_checked_config sets them: gone again after the test
        monkeypatch.setenv(name, "")
    config, _ = write_checked_config(addon, tmp_path / "smokewatch.yaml")
    assert config.model.cache_dir == str(tmp_path / "models")
    assert len(config.cameras) == len(options["cameras"])
