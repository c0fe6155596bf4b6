"""Commands from the bus to the command table, and their answers back.

On the bus's thread a command is only sorted: a retained one (a past press the broker replays)
is refused at once, the others wait in the inbox (a setting's newer value replacing one still
waiting, the inbox bounded). On the control thread they run in order, a request envelope is
opened (contract.open_command), and every command of a configured camera is answered on its
`<cam>/<command>/result`; made-up cameras and commands get no answer, so a flood of them makes
none.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from detector.contract import open_command
from detector.mqtt import Inbound
from detector.service.command_table import CommandInbox, CommandTable, Outcome, PendingCommand
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog

# What the sender of a setting's value hears when a newer value replaced it before it ran.
REPLACED = Outcome(True, "replaced by a newer value before it was applied")


class CommandRouter:
    """Routes `<cam>/<command>/set` messages through the inbox to the table, and answers."""

    def __init__(
        self,
        table: CommandTable,
        cameras: Collection[str],
        publisher: Publisher,
        refusals: RefusalLog,
        run_on_control: Callable[[Callable[[], None]], object],
    ) -> None:
        self.table = table
        self.cameras = cameras
        self.publisher = publisher
        self.refusals = refusals
        self.run_on_control = run_on_control
        self.inbox = CommandInbox(table.setting_commands)

    def message(self, message: Inbound) -> None:
        """A command from the bus (its thread): refused if retained, else queued."""
        parts = message.topic.split("/")
        camera, name = parts[-3], parts[-2]
        if message.retain:
            outcome = self.table.refuse_retained(camera, name)
            self._answer(camera, name, _request_id(message.payload), outcome)
            return
        was_empty = not len(self.inbox)
        accepted, replaced = self.inbox.put(PendingCommand(camera, name, message.payload))
        if not accepted:
            reason = f"{name}: {self.inbox.limit} commands already wait; this one is dropped"
            self.refusals.refuse(camera, "command_flood", reason)
            self._answer(camera, name, _request_id(message.payload), Outcome(False, reason))
            return
        if replaced is not None:
            self._answer(camera, name, _request_id(replaced.payload), REPLACED)
        if was_empty:
            self.run_on_control(self.run_waiting)

    def run_waiting(self) -> None:
        """The commands waiting in the inbox, in order (the control thread)."""
        for command in self.inbox.take():
            try:
                request_id, value = open_command(command.payload)
            except ValueError as err:
                outcome = self.table.refuse_request(command.camera, command.name, str(err))
                self._answer(command.camera, command.name, None, outcome)
                continue
            outcome = self.table.command(command.camera, command.name, value)
            self._answer(command.camera, command.name, request_id, outcome)

    def _answer(self, camera: str, name: str, request_id: str | None, outcome: Outcome) -> None:
        if camera in self.cameras and self.table.known(name):
            self.publisher.command_result(camera, name, request_id, outcome.ok, outcome.reason)


def _request_id(payload: bytes) -> str | None:
    try:
        return open_command(payload)[0]
    except ValueError:
        return None
