"""The distributed bucket sampler: global batches of one latent shape, split evenly over
ranks and micro-steps.

An epoch shuffles every bucket (samples sharing a (C, T', H', W') shape) with a seed of
(seed, epoch), cuts it into global batches (a bucket's last batch is topped up from a second
shuffle of the same bucket, so every batch is full and every sample is seen at least once an
epoch), and shuffles the order of all batches. Step ``s`` takes batch ``s mod n`` of epoch
``s div n``: the data position is a function of the step, so a resumed run reads exactly the
batches it would have read. Every rank computes the same global batch and takes its own
contiguous slice, so each rank does equal work on tensors of one shape, and the union over
ranks and micro-steps is the global batch whatever the world size.
"""

from __future__ import annotations

import math

import numpy as np


class BucketSampler:
    def __init__(self, buckets: dict[tuple[int, ...], list[int]], global_batch: int, seed: int = 0):
        if global_batch < 1:
            raise ValueError(f"global batch must be >= 1; got {global_batch}")
        if not buckets:
            raise ValueError("no samples to draw batches from")
        self.keys = sorted(buckets)
        self.buckets = {k: list(buckets[k]) for k in self.keys}
        self.batch, self.seed = global_batch, seed
        self.per_epoch = sum(math.ceil(len(self.buckets[k]) / global_batch) for k in self.keys)
        self._plan: tuple[int, list[list[int]]] | None = None

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch``, in order."""
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1]
        rng = np.random.default_rng([self.seed, epoch, 0x5A3])
        batches: list[list[int]] = []
        for k in self.keys:
            items = np.asarray(self.buckets[k])
            n = math.ceil(len(items) / self.batch)
            order = rng.permutation(items)
            while len(order) < n * self.batch:  # top up the last batch from fresh shuffles
                order = np.concatenate([order, rng.permutation(items)])
            batches += [order[i * self.batch : (i + 1) * self.batch].tolist() for i in range(n)]
        plan = [batches[i] for i in rng.permutation(len(batches))]
        self._plan = (epoch, plan)
        return plan

    def position(self, step: int) -> dict[str, int]:
        """Where ``step`` reads: epoch and batch within the epoch."""
        return {"epoch": step // self.per_epoch, "batch": step % self.per_epoch}

    def global_batch(self, step: int) -> list[int]:
        pos = self.position(step)
        return self.epoch_plan(pos["epoch"])[pos["batch"]]

    @staticmethod
    def split(n: int, rank: int, world: int, accum: int, micro: int) -> slice:
        """Positions in a global batch of ``n`` read by ``rank`` at micro-step ``micro``."""
        per = n // (world * accum)
        start = (rank * accum + micro) * per
        return slice(start, start + per)
