"""Where a long run stands: a live bar in a terminal, a plain line at most every 10 s in CI.

Written to stderr, so the report on stdout stays what scripts read; nothing with ``-q``.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import IO, Any

from dvc_multiremote.render import human_size

LINE_EVERY = 10.0  # seconds between plain lines when stderr is not a terminal


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Objects and bytes done of a known total, safe to advance from any thread.

    ``pull: 4,100 of 10,000 objects, 1.2 GB of 3.1 GB, 45.0 MB/s, about 1 min left``
    """

    def __init__(
        self,
        verb: str,
        objects: int,
        size: int | None,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        every: float = LINE_EVERY,
    ) -> None:
        self.verb = verb
        self.total = objects
        self.total_bytes = size or 0
        self.done = 0
        self.done_bytes = 0
        self.every = every
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()
        self._bar: Any = None
        self._terminal = self.enabled and _is_terminal(self.stream)
        if self.total:
            self._show_bar()

    def _show_bar(self) -> None:
        """The live bar, once there is something to count (in a terminal only)."""
        if not self._terminal or self._bar is not None:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=self.total_bytes or None,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            desc=self.verb,
            file=self.stream,
            leave=False,
            # A terminal that reports no size (a bare pseudo-terminal) still gets a bar.
            ncols=shutil.get_terminal_size((100, 24)).columns or 100,
        )
        self._bar.set_postfix_str(self._objects())

    def _objects(self) -> str:
        return f"{self.done:,} of {self.total:,} objects"

    def grow(self, objects: int, size: int) -> None:
        """More work learnt of (a push learns each remote's share once it is checked)."""
        if not self.enabled:
            return
        with self._lock:
            self.total += objects
            self.total_bytes += size
            if objects:
                self._show_bar()
            if self._bar is not None:
                self._bar.total = self.total_bytes or None
                self._bar.refresh()

    def advance(self, size: int = 0, objects: int = 1) -> None:
        """``objects`` more done, ``size`` bytes with them."""
        if not self.enabled:
            return
        with self._lock:
            self.done += objects
            self.done_bytes += size
            if self._bar is not None:
                self._bar.update(size)
                self._bar.set_postfix_str(self._objects(), refresh=False)
                return
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """One plain sentence of where the run stands."""
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        parts = [f"{self.verb}: {self._objects()}"]
        if self.total_bytes:
            done = min(self.done_bytes, self.total_bytes)
            parts.append(f"{human_size(done)} of {human_size(self.total_bytes)}")
        rate = self.done_bytes / elapsed
        if self.done_bytes:
            parts.append(f"{human_size(int(rate))}/s")
        left = self._left(elapsed)
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        return ", ".join(parts)

    def _left(self, elapsed: float) -> float | None:
        if self.total_bytes and self.done_bytes:
            left = elapsed * (self.total_bytes - self.done_bytes) / self.done_bytes
        elif self.done:
            left = elapsed * (self.total - self.done) / self.done
        else:
            return None
        return max(left, 0.0)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
