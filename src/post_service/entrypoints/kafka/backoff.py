"""Exponential backoff with jitter for workers that wait out a dependency outage."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_seconds: float = 0.2, max_seconds: float = 10.0) -> None:
        self._initial = initial_seconds
        self._max = max_seconds
        self._next = initial_seconds

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._max)
        # Jitter spreads replicas' retries so they do not hit a recovering dependency together.
        return delay * random.uniform(0.5, 1.0)  # noqa: S311  # nosec B311

    def reset(self) -> None:
        self._next = self._initial
