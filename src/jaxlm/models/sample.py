"""A uniform random sample of the fitted rows, kept while streaming (for diagnostic plots)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..io.design import DesignBlock


class Sample(NamedTuple):
    """A uniform random sample of the fitted rows: X (k, d), Y (k, m), w (k,), rows (k,) 0-based source rows."""

    X: np.ndarray
    Y: np.ndarray
    w: np.ndarray
    rows: np.ndarray


class _Reservoir:
    """A uniform sample of k rows of a stream: Li's algorithm L, vectorised.

    After the first k rows, the index of the next row to enter the sample advances by
    geometric skips, ``W ← W·u₁^(1/k)``, ``next ← next + ⌊log u₂ / log(1 − W)⌋ + 1``, and the
    row replaces a uniformly chosen one. Both recurrences are cumulative sums, so a block's
    replacements are drawn in a few NumPy calls: O(k log(n/k)) draws in all, not one per row.
    """

    CHUNK = 512

    def __init__(self, k: int, d: int, m: int, seed):
        self.k, self.seen = int(k), 0
        self.seed, self._rng = seed, None  # numpy.random (~4 ms to import) only once the sample is full
        self.X, self.Y = np.empty((self.k, d)), np.empty((self.k, m))
        self.w, self.rows = np.empty(self.k), np.empty(self.k, dtype=np.int64)
        self.log_w = 0.0       # log W
        self.next = None       # index (among rows seen) of the next row to enter the sample

    @property
    def rng(self):
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def _draw(self, n: int):
        """The next n (index, log W) of the skip sequence after the current state."""
        u = self.rng.random((2, n))
        log_w = self.log_w + np.cumsum(np.log1p(-u[0]) / self.k)
        with np.errstate(divide="ignore"):
            skip = np.floor(np.log1p(-u[1]) / np.log1p(-np.exp(log_w))) + 1
        return self.next + np.cumsum(np.minimum(skip, 2.0**62)), log_w

    def add(self, blk: DesignBlock):
        b = len(blk.X)
        if b == 0 or self.k == 0:
            return
        rows = blk.rows if blk.rows is not None else blk.start + np.arange(b)
        t0 = self.seen
        fill = max(0, min(self.k - t0, b))
        if fill:
            self.X[t0:t0 + fill], self.Y[t0:t0 + fill] = blk.X[:fill], blk.Y[:fill]
            self.w[t0:t0 + fill], self.rows[t0:t0 + fill] = blk.w[:fill], rows[:fill]
            if t0 + fill == self.k:  # full: the first skip
                self.next = float(self.k - 1)
                pos, lw = self._draw(1)
                self.next, self.log_w = float(pos[0]), float(lw[0])
        self.seen += b
        if self.next is None:
            return
        taken = []
        while self.next < self.seen:
            pos, lw = self._draw(self.CHUNK)
            inside = int(np.searchsorted(pos, self.seen))  # pos[:inside] < seen <= pos[inside:]
            if inside < len(pos):
                taken.append(np.r_[self.next, pos[:inside]])
                self.next, self.log_w = float(pos[inside]), float(lw[inside])
            else:
                taken.append(np.r_[self.next, pos[:-1]])
                self.next, self.log_w = float(pos[-1]), float(lw[-1])
        if not taken:
            return
        src = (np.concatenate(taken) - t0).astype(np.int64)
        src = src[(src >= 0) & (src < b)]
        slots = self.rng.integers(self.k, size=len(src))
        # a later row replaces an earlier one in the same slot: keep the last occurrence
        last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
        slots, src = slots[last], src[last]
        self.X[slots], self.Y[slots] = blk.X[src], blk.Y[src]
        self.w[slots], self.rows[slots] = blk.w[src], rows[src]

    def sample(self) -> Sample:
        k = min(self.k, self.seen)
        order = np.argsort(self.rows[:k], kind="stable")
        return Sample(self.X[:k][order], self.Y[:k][order], self.w[:k][order], self.rows[:k][order])
