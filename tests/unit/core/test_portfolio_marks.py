"""MarkBook: a position's newest mark wins whichever path brought it; a closed one's marks go."""

from __future__ import annotations

from decimal import Decimal

from actors.core.portfolio_marks import MarkBook

D = Decimal


def test_mark_older_than_the_one_held_dropped_running_pnl_unchanged() -> None:
    book = MarkBook()
    assert book.take("p1", at_ns=200, realized_pnl=D("1.50"), unrealized_pnl=D("-4.00"))
    assert not book.take("p1", at_ns=100, realized_pnl=D(0), unrealized_pnl=D(1_000_000))
    assert book.running_pnl == D("-2.50")
    assert book.unrealized_pnl == D("-4.00")


def test_newer_mark_replaces_the_one_held() -> None:
    book = MarkBook()
    book.take("p1", at_ns=100, realized_pnl=D(0), unrealized_pnl=D(5))
    assert book.take("p1", at_ns=101, realized_pnl=D(0), unrealized_pnl=D(-7))
    assert book.unrealized_pnl == D(-7)


def test_marks_of_several_positions_add_up_and_a_dropped_one_leaves() -> None:
    book = MarkBook()
    book.take("p1", at_ns=1, realized_pnl=D("2.25"), unrealized_pnl=D("1.00"))
    book.take("p2", at_ns=1, realized_pnl=D(0), unrealized_pnl=D("-0.75"))
    assert book.running_pnl == D("2.50")
    book.drop("p1")
    assert book.running_pnl == D("-0.75")
    book.drop("p1")  # a replayed close changes nothing
    assert book.running_pnl == D("-0.75")
