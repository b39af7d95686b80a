"""Pack same-task samples into sequences of at most `capacity` tokens (paper §2.2: "packing the same task data
into sequences of length 2048"), recording where each sample starts so a trainer can block attention."""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass
class Sequence:
    items: list[int]  # indexes into the caller's sample list, in packing order
    lengths: list[int]

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    def boundaries(self) -> list[tuple[int, int]]:
        """(start, length) of each sample in the sequence."""
        starts = [0]
        for length in self.lengths[:-1]:
            starts.append(starts[-1] + length)
        return list(zip(starts, self.lengths, strict=True))


def pack(lengths: list[int], capacity: int) -> tuple[list[Sequence], list[int]]:
    """Best-fit decreasing: (sequences, indexes of samples longer than capacity). Deterministic: ties keep
    input order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    sequences: list[Sequence] = []
    free: list[tuple[int, int]] = []  # (remaining capacity, sequence index), sorted
    too_long = []
    for i in order:
        length = lengths[i]
        if length > capacity:
            too_long.append(i)
            continue
        at = bisect.bisect_left(free, (length, -1))
        if at < len(free):
            remaining, s = free.pop(at)
        else:
            sequences.append(Sequence([], []))
            remaining, s = capacity, len(sequences) - 1
        sequences[s].items.append(i)
        sequences[s].lengths.append(length)
        if remaining - length > 0:
            bisect.insort(free, (remaining - length, s))
    return sequences, sorted(too_long)
