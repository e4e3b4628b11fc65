"""The interface every gait detector implements."""

from __future__ import annotations

from typing import Protocol

from controller.types import GaitEvent, Sample


class GaitDetector(Protocol):
    """Turns a stream of samples into gait events, causally.

    ``update`` is called once per sample in time order and returns the events that became
    certain with this sample (usually none). Feeding samples one at a time or in blocks must
    give the same events.
    """

    def update(self, sample: Sample) -> list[GaitEvent]: ...

    def reset(self) -> None:
        """Forget the walk so far (after a pause or a fault)."""

    def drain_notes(self) -> list[str]:
        """What the detector changed about its calibration since last asked, in words
        (for the session record); usually nothing."""
