"""Resident memory of this process, and the peak of each stage of a run.

    from evalsuite import memory as _memory
    with _memory.stage() as m:      # a sampler thread reads /proc/self/statm every 20 ms
        train(...)
    m.peak_mb                       # the largest resident set seen while the block ran
    _memory.rss_mb()                # resident now; _memory.peak_rss_mb(): the process's peak so far
    _memory.release()               # after a stage: collect cycles and hand free heap pages back

The process's peak (``VmHWM``, what ``/usr/bin/time -v`` reports as the maximum resident set)
is never reset here: a stage's peak is sampled, so a spike shorter than the interval can be
missed, while the whole run's peak stays exact. Where ``/proc`` is missing (not Linux) every
figure is ``None``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

INTERVAL_S = 0.02
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MB = 1024 * 1024


def rss_mb() -> float | None:
    """This process's resident set now, in MiB."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / MB
    except (OSError, ValueError, IndexError):
        return None


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None


_TRIM = _libc_trim()


def release() -> None:
    """Give the memory of objects no longer referenced back to the system: collect reference cycles
    (a trainer and its model hold each other) and return glibc's free heap pages (``malloc_trim``;
    without it a finished stage's gigabytes stay resident, free inside the process but unusable by
    the next process or stage's different allocation sizes)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def peak_rss_mb() -> float | None:
    """This process's peak resident set so far (``VmHWM``), in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass(eq=False)
class StagePeak:
    """The resident set while one stage ran: at its start, its sampled peak, and at its end (MiB)."""

    start_mb: float | None = None
    peak_mb: float | None = None
    end_mb: float | None = None

    def seen(self, value: float | None) -> None:
        if value is not None and (self.peak_mb is None or value > self.peak_mb):
            self.peak_mb = value

    def to_dict(self) -> dict[str, float | None]:
        return {
            k: None if v is None else round(v, 1)
            for k, v in (("start_mb", self.start_mb), ("peak_mb", self.peak_mb), ("end_mb", self.end_mb))
        }


@dataclass
class _Sampler:
    watching: list[StagePeak] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        while True:
            with self.lock:
                watching = list(self.watching)
            if not watching:
                self.wake.wait()
                self.wake.clear()
                continue
            value = rss_mb()
            for w in watching:
                w.seen(value)
            time.sleep(INTERVAL_S)

    def add(self, w: StagePeak) -> None:
        with self.lock:
            self.watching.append(w)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="evalsuite-rss", daemon=True)
                self.thread.start()
        self.wake.set()

    def remove(self, w: StagePeak) -> None:
        with self.lock:
            if w in self.watching:
                self.watching.remove(w)


_SAMPLER = _Sampler()


@contextmanager
def stage() -> Iterator[StagePeak]:
    """Sample the resident set while the block runs (stages may nest: each gets its own peak)."""
    w = StagePeak(start_mb=rss_mb())
    w.seen(w.start_mb)
    _SAMPLER.add(w)
    try:
        yield w
    finally:
        _SAMPLER.remove(w)
        w.end_mb = rss_mb()
        w.seen(w.end_mb)
