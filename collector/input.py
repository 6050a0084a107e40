"""What the daemon asks of every input (an MQTT broker, an OPC UA endpoint), whatever it reads from."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Input"]


class Input(Protocol):
    """A streaming input: the sensors it feeds, start, prepare to stop, stop.

    The daemon treats every input alike: `start` at its start, and at its stop `prepare_stop`
    on each, `stop` at once on those that answer False, and `stop` after the batch writer has
    committed what was queued on those that answer True.

    Attributes:
        name: the endpoint's name in the plant file.
        tags: the sensors it feeds.
    """

    name: str
    tags: list[str]

    def start(self, backfill_from_us: int | None = None) -> None:
        """Connect and collect in the background until `stop`.

        Args:
            backfill_from_us: the newest reading already stored from this input (µs), where
                the daemon was away since; an input whose source keeps history reads back
                from there (OPC UA), one whose source keeps the messages for it ignores it
                (an MQTT session).
        """
        ...

    def prepare_stop(self) -> bool:
        """Take nothing new from now on (the daemon is stopping).

        Returns:
            True when the input must stay connected until the writer has committed what it
            queued (it acknowledges on commit), and be stopped only then; False when it can be
            stopped at once.
        """
        ...

    async def stop(self) -> None:
        """Disconnect and end its tasks or thread."""
        ...
