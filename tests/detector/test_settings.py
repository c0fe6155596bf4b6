"""A camera's live settings and the rule between the file and Home Assistant (settings.py)."""

from __future__ import annotations

import pytest

from detector.service.settings import (
    FROM_FILE,
    FROM_RUN_TIME,
    LiveSettings,
    parse_enabled,
    parse_masks,
    parse_threshold,
)


@pytest.mark.parametrize(("text", "value"), [("ON", True), ("off", False), ("On", True)])
def test_parse_enabled(text: str, value: bool) -> None:
    assert parse_enabled(text) is value


@pytest.mark.parametrize("text", ["maybe", "", "1", "nan"])
def test_parse_enabled_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="ON or OFF"):
        parse_enabled(text)


@pytest.mark.parametrize("text", ["nan", "inf", "0.99", "0", "x", "-0.3"])
def test_parse_threshold_refuses_what_the_vote_cannot_use(text: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(text)


def test_parse_masks_empty_clears_and_garbage_is_refused() -> None:
    assert parse_masks("") == []
    assert parse_masks('[{"name": "z", "rect": [0, 0, 0.5, 0.5]}]')[0].name == "z"
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_masks("{oops")


def test_a_change_at_run_time_and_back_to_the_file() -> None:
    settings = LiveSettings.from_file("a", enabled=True, threshold=0.25)
    settings.set("threshold", 0.4)
    assert settings.to_json()["threshold"] == {"value": 0.4, "file": 0.25, "source": FROM_RUN_TIME}
    settings.set("threshold", 0.25)  # set back to the file's value: the file's again
    assert settings.values["threshold"].source == FROM_FILE
    settings.set("enabled", False)
    assert settings.use_file() == ["enabled"] and settings.enabled


def test_the_restore_rule() -> None:
    """Restored after a restart: a change made in HA lasts until the file's value changes."""
    settings = LiveSettings.from_file("a", enabled=True, threshold=0.25)
    record = {"value": 0.4, "file": 0.25, "source": FROM_RUN_TIME}
    assert settings.restored("threshold", 0.4, record) and settings.threshold == 0.4
    edited = LiveSettings.from_file("a", enabled=True, threshold=0.3)  # the file was edited
    assert not edited.restored("threshold", 0.4, record) and edited.threshold == 0.3
    old_file_value = {"value": 0.2, "file": 0.2, "source": FROM_FILE}
    assert not edited.restored("threshold", 0.2, old_file_value)
    no_record = LiveSettings.from_file("a", enabled=True, threshold=0.3)
    assert no_record.restored("threshold", 0.5, None) and no_record.threshold == 0.5
    assert not no_record.restored("threshold", 0.7, "not an object")
