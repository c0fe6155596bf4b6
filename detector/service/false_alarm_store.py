"""The frames of alerts dismissed as "Not smoke", kept as a labelled false-alarm set.

Each dismissed alert becomes one folder of `false_alarms.dir`: the camera's latest frames
(the vote's window: the frames that raised or kept the alert), named with their capture time
in UTC, and a `label.yaml` saying the sequence has no fire. `smokewatch eval` reads the folder
as it is, so a user can check a threshold change against their own false alarms. At most
`false_alarms.keep` folders are kept (the oldest go first). Writing happens on a thread of
its own: a slow disk never delays a command.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from detector.config import FalseAlarmsConfig
from detector.contract import iso_utc
from detector.service.false_alarm import FalseAlarm
from detector.supervise import Health

_LOGGER = logging.getLogger(__name__)

PART = "false alarm frames"
LABEL = "label.yaml"


def _stamp(epoch: float) -> str:
    """A file-name time eval reads back: 20260701T121500.250 (UTC)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


class FalseAlarmStore:
    """Writes dismissed alerts' frames (one writer thread), bounded in count."""

    def __init__(self, config: FalseAlarmsConfig, health: Health) -> None:
        self.folder = Path(config.dir).expanduser()
        self.keep = config.keep
        self.health = health
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="false-alarms")

    def save(
        self, camera: str, frames: Sequence[tuple[float, bytes]], event: FalseAlarm
    ) -> Future[Path | None]:
        """Keep `frames` ((capture time, JPEG), oldest first) of a dismissed alert."""
        return self._writer.submit(self._write, camera, list(frames), event)

    def close(self) -> None:
        """Finish what is being written."""
        self._writer.shutdown(wait=True)

    def _write(
        self, camera: str, frames: list[tuple[float, bytes]], event: FalseAlarm
    ) -> Path | None:
        if self.keep == 0 or not frames:
            return None
        try:
            folder = self._folder(camera, event)
            for index, (captured, jpeg) in enumerate(frames):
                # The index keeps names unique (two frames within a millisecond) and in order;
                # eval reads the time before it.
                (folder / f"{camera}_{_stamp(captured)}_{index:02d}.jpg").write_bytes(jpeg)
            started = "unknown" if event.alert_started is None else iso_utc(event.alert_started)
            (folder / LABEL).write_text(
                "# Dismissed as 'Not smoke' in Home Assistant: these frames raised the alert.\n"
                "fire: false\n"
                f"note: camera {camera}, alert started {started}, dismissed {iso_utc(event.at)},"
                f" masked as {', '.join(event.masks) or '-'}\n"
            )
            self._prune()
        except OSError as err:
            self.health.failed(PART, err)
            return None
        self.health.ok(PART)
        _LOGGER.info(
            "Camera %s: the %d frames of the dismissed alert are kept in %s",
            camera,
            len(frames),
            folder,
        )
        return folder

    def _folder(self, camera: str, event: FalseAlarm) -> Path:
        base = f"{camera}_{_stamp(event.alert_started or event.at)}"
        self.folder.mkdir(parents=True, exist_ok=True)
        for index in range(1, 1000):
            folder = self.folder / (base if index == 1 else f"{base}_{index}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return folder
        raise OSError(f"too many false alarms named {base} in {self.folder}")

    def _prune(self) -> None:
        """Keep the newest `keep` sequences (a folder with a label of ours)."""
        kept = sorted(
            (path for path in self.folder.iterdir() if (path / LABEL).is_file()),
            key=lambda path: path.stat().st_mtime,
        )
        for old in kept[: max(0, len(kept) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)
