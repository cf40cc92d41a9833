"""The resident-memory figures of a run: the sampler sees a stage's peak, nested stages each get theirs."""
import numpy as np
import pytest

from evalsuite import _memory

pytestmark = pytest.mark.skipif(_memory.rss_mb() is None, reason="no /proc on this system")


def test_a_stage_sees_memory_that_was_freed_before_it_ended():
    with _memory.stage() as outer:
        with _memory.stage() as inner:
            block = np.ones(200 * 1024 * 1024 // 8)  # 200 MiB, every page written
            _memory.threading.Event().wait(5 * _memory.INTERVAL_S)
            del block
        after_inner = _memory.rss_mb()
    assert inner.peak_mb - inner.start_mb > 150
    assert outer.peak_mb >= inner.peak_mb - 1
    assert inner.end_mb < inner.peak_mb - 150  # the block was given back before the stage ended
    assert after_inner < inner.peak_mb
    assert set(inner.to_dict()) == {"start_mb", "peak_mb", "end_mb"}


def test_the_process_peak_is_at_least_any_stage_peak():
    with _memory.stage() as m:
        block = np.ones(50 * 1024 * 1024 // 8)
        del block
    assert _memory.peak_rss_mb() >= m.peak_mb - 1
