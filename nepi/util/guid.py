"""Experiment-wide guid allocation with NEPI 2's numbering (max + 1, never reused)."""

import bisect
from typing import Optional


class GuidGenerator:
    def __init__(self) -> None:
        self._guids: list = []

    def next(self, guid: Optional[int] = None) -> int:
        if guid is None:
            guid = self._guids[-1] + 1 if self._guids else 1
        else:
            if not isinstance(guid, int) or isinstance(guid, bool) or guid < 1:
                raise ValueError("guid must be a positive integer, got %r" % (guid,))
            pos = bisect.bisect_left(self._guids, guid)
            if pos < len(self._guids) and self._guids[pos] == guid:
                raise RuntimeError("guid %d is already assigned" % guid)
        bisect.insort(self._guids, guid)
        return guid

    def is_assigned(self, guid: int) -> bool:
        pos = bisect.bisect_left(self._guids, guid)
        return pos < len(self._guids) and self._guids[pos] == guid
