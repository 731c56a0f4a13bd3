"""A feed writes its position every N batches or T ms, whichever first, never with nothing new:
a durable commit per batch cost as much as delivering it, and a crash re-delivers only the rest."""

from __future__ import annotations

from actors.shells.feed import CheckpointPacer


def test_a_write_is_due_after_every_batches_batches_not_before() -> None:
    pacer = CheckpointPacer(every_batches=3, every_ms=60_000, now_ms=0)
    assert [pacer.delivered(now_ms=t) for t in (1, 2, 3)] == [False, False, True]


def test_a_write_is_due_after_every_ms_even_with_few_batches() -> None:
    pacer = CheckpointPacer(every_batches=100, every_ms=1_000, now_ms=0)
    assert not pacer.delivered(now_ms=999)
    assert pacer.due(now_ms=1_000)


def test_nothing_delivered_since_the_last_write_is_never_due() -> None:
    pacer = CheckpointPacer(every_batches=1, every_ms=0, now_ms=0)
    assert not pacer.due(now_ms=10_000)
    assert pacer.delivered(now_ms=10_001)
    pacer.saved(now_ms=10_002)
    assert not pacer.due(now_ms=99_999)


def test_a_write_restarts_both_counts() -> None:
    pacer = CheckpointPacer(every_batches=2, every_ms=1_000, now_ms=0)
    pacer.delivered(now_ms=100)
    pacer.saved(now_ms=900)
    assert not pacer.delivered(now_ms=1_800)  # 900 ms and one batch since the write
    assert pacer.delivered(now_ms=1_850)  # the second batch since the write


def test_every_batches_one_writes_after_every_batch() -> None:
    pacer = CheckpointPacer(every_batches=1, every_ms=60_000, now_ms=0)
    for t in range(1, 5):
        assert pacer.delivered(now_ms=t)
        pacer.saved(now_ms=t)


def test_a_failed_write_leaves_its_batches_unsaved_for_the_next_turn() -> None:
    pacer = CheckpointPacer(every_batches=1, every_ms=60_000, now_ms=0)
    pacer.delivered(now_ms=1)
    pacer.saved(now_ms=2)
    pacer.failed()
    assert pacer.due(now_ms=3)
