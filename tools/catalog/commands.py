"""The command a data file records: every command that made it, in order.

A measurement or evaluation file is often made in parts (a run, then a resumed run of
other mechanisms); each part's command is kept, so the file says how to remake it.
"""

from __future__ import annotations

COMMAND_SEPARATOR = "  # then: "


def commands_so_far(saved: str | None, command: str) -> str:
    """The file's commands with this run's appended, unless it is the last one already.

    Examples:
        >>> commands_so_far(None, "python -m tools.measure")
        'python -m tools.measure'
        >>> commands_so_far("python -m tools.measure", "python -m tools.measure")
        'python -m tools.measure'
        >>> commands_so_far("python -m tools.measure", "python -m tools.measure --quick")
        'python -m tools.measure  # then: python -m tools.measure --quick'
    """
    if not saved:
        return command
    if saved.rsplit(COMMAND_SEPARATOR, 1)[-1] == command:
        return saved
    return saved + COMMAND_SEPARATOR + command
