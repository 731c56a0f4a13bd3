"""Polymarket day: loaders, settlement rule, binary pricing, modelled books, the lag strategy."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.pricing import fair_value, norm_cdf, prob_up, realized_vol
from actors.core.strategies import build_strategy
from actors.core.strategies.polymarket_lag import PolymarketLag
from actors.data.polymarket import (
    CORRELATION_GROUP,
    BinaryMarket,
    ChainlinkTicks,
    load_chainlink,
    load_markets,
    settlement_outcome,
)
from actors.data.polymarket_books import BookModel, BookModelConfig
from actors.domain.model import BookLevel, Candle, Instrument, MarketKind, OrderBook, Side
from config.models import PolymarketLagConfig
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
MARKETS = ROOT / "ops/data/polymarket/BTC-5m-markets-2026-07-24.jsonl.gz"
CHAINLINK = ROOT / "ops/data/polymarket/BTCUSD-chainlink-2026-07-24.csv.gz"


@pytest.fixture(scope="module")
def ticks() -> ChainlinkTicks:
    return load_chainlink(CHAINLINK)


@pytest.fixture(scope="module")
def markets(ticks: ChainlinkTicks) -> list[BinaryMarket]:
    return load_markets(MARKETS, ticks)


@pytest.fixture(scope="module")
def raw_markets() -> list[BinaryMarket]:
    return load_markets(MARKETS)


def _has_tick_at(ticks: ChainlinkTicks, ms: int) -> bool:
    i = ticks.index_at(ms)
    return i >= 0 and int(ticks.ts_ms[i]) == ms


# --------------------------------------------------------------------------- loaders


def test_load_markets_real_day_has_292_contiguous_windows(markets: list[BinaryMarket]) -> None:
    assert len(markets) == 292
    starts = [m.start_ms for m in markets]
    assert all(b - a == 300_000 for a, b in itertools.pairwise(starts))
    assert all(m.end_ms - m.start_ms == 300_000 for m in markets)
    tokens = {t for m in markets for t in m.token_ids}
    assert len(tokens) == 584
    assert sum(m.outcome == "Up" for m in markets) == 140
    assert sum(m.outcome == "Down" for m in markets) == 152
    assert {m.min_size for m in markets} == {Decimal(5)}
    assert {m.tick_size for m in markets} == {Decimal("0.01"), Decimal("0.001")}
    first = markets[0]
    assert first.slug == "btc-updown-5m-1784850900"
    assert first.created_ms == 1784764928939  # 2026-07-23T00:02:08.939Z
    assert first.fee_schedule is not None
    assert first.fee_schedule.rate == 0.07
    assert first.fee_schedule.fee(100, 0.5) == pytest.approx(100 * 0.07 * 0.25)


def test_load_markets_recorded_strike_equals_chainlink_tick_at_start(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    checked = 0
    for m in markets:
        if m.strike_recorded and _has_tick_at(ticks, m.start_ms):
            assert m.strike == ticks.price_at(m.start_ms)
            checked += 1
    assert checked == 271  # all 274 recorded strikes but 3 windows starting outside the log


def test_load_markets_null_strike_filled_from_last_tick_at_or_before_start(
    markets: list[BinaryMarket], raw_markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    missing = [m for m in raw_markets if m.strike is None]
    assert len(missing) == 18
    assert all(not m.strike_recorded for m in missing)
    by_slug = {m.slug: m for m in markets}
    for m in missing:
        assert not _has_tick_at(ticks, m.start_ms)  # a strike is null exactly where the feed had a gap
        filled = by_slug[m.slug]
        assert filled.strike == ticks.price_at(m.start_ms)
        assert not filled.strike_recorded
    # the last window starts after the log ends: its fallback is the log's last tick
    assert markets[-1].strike == float(ticks.price[-1])


def test_instruments_are_binary_up_and_down_tokens(markets: list[BinaryMarket]) -> None:
    m = markets[1]
    up, down = m.instruments()
    assert (up.symbol, down.symbol) == (m.up_token_id, m.down_token_id)
    assert (up.outcome, down.outcome) == ("Up", "Down")
    for inst in (up, down):
        assert inst.venue == "polymarket"
        assert inst.kind is MarketKind.BINARY
        assert inst.market_id == f"polymarket:{inst.symbol}"
        assert inst.lot_size == Decimal("0.01")
        assert inst.tick_size == m.tick_size
        assert inst.min_size == Decimal(5)
        assert inst.correlation_group == CORRELATION_GROUP
        assert (inst.start_ms, inst.end_ms, inst.strike) == (m.start_ms, m.end_ms, m.strike)
        assert inst.condition_id == m.condition_id
        assert inst.created_ms == m.created_ms
    assert m.payout(m.up_token_id) == (1 if m.outcome == "Up" else 0)
    assert m.payout(m.down_token_id) == (1 if m.outcome == "Down" else 0)
    with pytest.raises(KeyError):
        m.token_outcome("not-a-token")


def test_load_chainlink_real_day_one_tick_per_second_ascending(ticks: ChainlinkTicks) -> None:
    assert len(ticks.ts_ms) == 78_515
    assert ticks.ts_ms.dtype == np.int64
    assert ticks.price.dtype == np.float64
    assert np.all(np.diff(ticks.ts_ms // 1000) > 0)
    assert int(ticks.ts_ms[0]) == 1784851200000  # 2026-07-24 00:00:00 UTC
    assert int(ticks.ts_ms[-1]) == 1784937599000  # 23:59:59
    assert ticks.price[0] == 65048078902260626000000 / 10**18


@pytest.mark.parametrize("gz", [True, False])
def test_load_chainlink_same_second_later_recv_wins(tmp_path: Path, gz: bool) -> None:
    text = (
        "feed_ts_ms,value,full_accuracy_value,server_ts_ms,recv_ms\n"
        "1000,10.0,10000000000000000000,1100,1900\n"
        "1000,11.0,11000000000000000000,1100,1500\n"  # same second, received earlier: loses
        "2000,12.0,12000000000000000000,2100,2200\n"
        "2500,13.0,,2600,2700\n"  # same second as 2000, received later: wins; no full value
        "4000,14.0,14000000000000000000,4100,4200\n"
    )
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    ts, price = load_chainlink(path)
    assert ts.tolist() == [1000, 2500, 4000]
    assert price.tolist() == [10.0, 13.0, 14.0]


# --------------------------------------------------------------------------- settlement


def test_settlement_rule_reproduces_recorded_outcomes(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    agree, disagree, undecided = [], [], []
    for m in markets:
        outcome = settlement_outcome(m, ticks)
        if outcome is None:
            undecided.append(m)
        elif outcome == m.outcome:
            agree.append(m)
        else:
            disagree.append(m)
    assert (len(agree), len(disagree), len(undecided)) == (283, 5, 4)
    # undecided: the windows ending at or after midnight, where the log stops
    assert all(m.end_ms > int(ticks.ts_ms[-1]) for m in undecided)
    # every disagreement is a feed gap: no tick at end_sec, or at start_sec (strike is the fallback)
    for m in disagree:
        assert not _has_tick_at(ticks, m.end_ms) or not m.strike_recorded
    # with both boundary ticks in the log and a recorded strike, the rule is always right
    clean = [m for m in agree + disagree if m.strike_recorded and _has_tick_at(ticks, m.end_ms)]
    assert len(clean) == 257
    assert all(settlement_outcome(m, ticks) == m.outcome for m in clean)


def _market(start_ms: int = 1_000_000, strike: float | None = 100.0) -> BinaryMarket:
    return BinaryMarket(
        slug="t",
        condition_id="0xc",
        up_token_id="111",
        down_token_id="222",
        start_ms=start_ms,
        end_ms=start_ms + 300_000,
        strike=strike,
        strike_recorded=strike is not None,
        outcome=None,
        tick_size=Decimal("0.01"),
        min_size=Decimal(5),
        created_ms=None,
        fee_schedule=None,
    )


def _ticks(ts: list[int], px: list[float]) -> ChainlinkTicks:
    return ChainlinkTicks(np.array(ts, dtype=np.int64), np.array(px, dtype=np.float64))


def test_settlement_outcome_tie_at_strike_goes_up() -> None:
    m = _market()
    assert settlement_outcome(m, _ticks([m.end_ms], [100.0])) == "Up"
    assert settlement_outcome(m, _ticks([m.end_ms - 1000, m.end_ms + 1000], [99.99, 200.0])) == "Down"


def test_settlement_outcome_log_ending_before_end_is_undecided() -> None:
    m = _market()
    assert settlement_outcome(m, _ticks([m.end_ms - 1000], [120.0])) is None
    assert settlement_outcome(_market(strike=None), _ticks([m.end_ms], [120.0])) is None  # no strike


# --------------------------------------------------------------------------- pricing


def test_prob_up_at_expiry_is_settlement_step() -> None:
    assert prob_up(101.0, 100.0, 0.0, 1e-4) == 1.0
    assert prob_up(100.0, 100.0, 0.0, 1e-4) == 1.0  # ties go to Up, as settlement does
    assert prob_up(99.0, 100.0, 0.0, 1e-4) == 0.0
    assert prob_up(99.0, 100.0, -5.0, 1e-4) == 0.0


def test_prob_up_zero_sigma_is_settlement_step() -> None:
    assert prob_up(100.5, 100.0, 300.0, 0.0) == 1.0
    assert prob_up(99.5, 100.0, 300.0, 0.0) == 0.0


def test_prob_up_at_the_money_is_half() -> None:
    assert prob_up(100.0, 100.0, 300.0, 3e-5) == 0.5


def test_prob_up_matches_formula() -> None:
    s, k, tau, sigma = 65_050.0, 65_000.0, 120.0, 4e-5
    expected = 0.5 * (1 + math.erf(math.log(s / k) / (sigma * math.sqrt(tau)) / math.sqrt(2)))
    assert prob_up(s, k, tau, sigma) == pytest.approx(expected, abs=1e-12)


def test_prob_up_nonpositive_price_raises() -> None:
    with pytest.raises(ValueError, match="positive"):
        prob_up(0.0, 100.0, 10.0, 1e-4)


prices = st.floats(min_value=1_000.0, max_value=200_000.0, allow_nan=False)
taus = st.floats(min_value=0.0, max_value=3_600.0, allow_nan=False)
sigmas = st.floats(min_value=0.0, max_value=1e-2, allow_nan=False)


@given(s1=prices, s2=prices, k=prices, tau=taus, sigma=sigmas)
def test_prob_up_in_unit_interval_and_nondecreasing_in_price(
    s1: float, s2: float, k: float, tau: float, sigma: float
) -> None:
    lo, hi = sorted((s1, s2))
    p_lo, p_hi = prob_up(lo, k, tau, sigma), prob_up(hi, k, tau, sigma)
    assert 0.0 <= p_lo <= p_hi <= 1.0


@given(s=prices, k=prices, tau=st.floats(min_value=1e-3, max_value=3_600.0), sigma=st.floats(1e-6, 1e-2))
def test_prob_up_up_and_down_sum_to_one_by_symmetry(s: float, k: float, tau: float, sigma: float) -> None:
    assert prob_up(s, k, tau, sigma) + prob_up(k, s, tau, sigma) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=200)
@given(
    s=prices,
    k=prices,
    sigma=st.floats(min_value=1e-6, max_value=1e-2),
    tau=st.floats(min_value=1e-3, max_value=3_600.0),
    shrink=st.floats(min_value=1e-6, max_value=1.0),
)
def test_prob_up_tends_to_step_as_tau_shrinks(
    s: float, k: float, sigma: float, tau: float, shrink: float
) -> None:
    if s == k:
        return
    step = 1.0 if s > k else 0.0
    far = abs(prob_up(s, k, tau, sigma) - step)
    near = abs(prob_up(s, k, tau * shrink, sigma) - step)
    assert near <= far + 1e-15  # shorter time, closer to the step
    # and in the limit: |ln(S/K)| / (σ√τ) >= 40 gives the step to float precision
    tiny = (abs(math.log(s / k)) / (40 * sigma)) ** 2
    assert prob_up(s, k, tiny, sigma) == pytest.approx(step, abs=1e-12)


def test_norm_cdf_known_values() -> None:
    assert norm_cdf(0.0) == 0.5
    assert norm_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-12)
    assert norm_cdf(-40.0) == pytest.approx(0.0, abs=1e-300)


def test_realized_vol_gap_counts_as_its_duration() -> None:
    r = 1e-4
    px = [100.0 * math.exp(r * i) for i in range(11)]
    assert realized_vol([1000 * i for i in range(11)], px) == pytest.approx(r, rel=1e-9)
    # the same returns over 4-second steps: σ per √s halves
    assert realized_vol([4000 * i for i in range(11)], px) == pytest.approx(r / 2, rel=1e-9)


def test_realized_vol_short_or_flat_history_is_zero() -> None:
    assert realized_vol([], []) == 0.0
    assert realized_vol([1000], [100.0]) == 0.0
    assert realized_vol([1000, 2000, 3000], [100.0, 100.0, 100.0]) == 0.0
    with pytest.raises(ValueError, match="length"):
        realized_vol([1000, 2000], [100.0])


def test_fair_value_uses_only_the_past() -> None:
    ts = [1000 * i for i in range(100)]
    px = [100.0 + 0.01 * math.sin(i) for i in range(100)]
    base = fair_value(ts, px, 50_500, 100.0, 200_000, vol_window_s=30)
    later = fair_value([*ts, 50_600], [*px, 1e6], 50_500, 100.0, 200_000, vol_window_s=30)
    assert base is not None
    assert base == later
    assert base.price == px[50]
    assert base.n_returns == 29  # points at 21..50 s: the last 30 s, 30 points, 29 returns
    assert base.tau_s == pytest.approx(149.5)
    assert fair_value(ts, px, 500, 100.0, 200_000, vol_window_s=30) is not None
    assert fair_value(ts, px, -1, 100.0, 200_000, vol_window_s=30) is None


def test_fair_value_sigma_floor_applies() -> None:
    flat = fair_value([0, 1000, 2000], [100.0] * 3, 2000, 99.99, 100_000, 60, sigma_floor=1e-4)
    assert flat is not None
    assert flat.sigma == 1e-4
    assert 0.5 < flat.prob_up < 1.0


# --------------------------------------------------------------------------- book model


def _window(markets: list[BinaryMarket], slug_sec: int) -> BinaryMarket:
    return next(m for m in markets if m.start_ms == slug_sec * 1000)


def _all_prices(book: OrderBook) -> list[Decimal]:
    return [lv.price for lv in (*book.bids, *book.asks)]


def test_books_at_same_inputs_identical_and_seed_changes_only_sizes(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    m = markets[20]
    now = m.start_ms + 123_000
    a = BookModel().books_at(m, now, ticks)
    assert a == BookModel().books_at(m, now, ticks)
    b = BookModel(BookModelConfig(seed=8)).books_at(m, now, ticks)
    assert [_all_prices(x) for x in a] == [_all_prices(x) for x in b]
    assert [lv.size for lv in a[0].bids] != [lv.size for lv in b[0].bids]


def test_books_at_up_and_down_are_mirrors(markets: list[BinaryMarket], ticks: ChainlinkTicks) -> None:
    model = BookModel()
    for m in markets[10:14]:
        for now in range(m.start_ms, m.end_ms, 7_000):
            up, down = model.books_at(m, now, ticks)
            assert up.market == f"polymarket:{m.up_token_id}"
            assert down.market == f"polymarket:{m.down_token_id}"
            assert [(1 - lv.price, lv.size) for lv in up.asks] == [(lv.price, lv.size) for lv in down.bids]
            assert [(1 - lv.price, lv.size) for lv in up.bids] == [(lv.price, lv.size) for lv in down.asks]
            assert up.best_bid is not None
            assert down.best_ask is not None
            assert up.best_bid + down.best_ask == 1


def test_books_at_prices_tick_aligned_in_range_and_ordered(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    model = BookModel(BookModelConfig(levels=8, half_spread_ticks=2))
    for m in markets[30:40]:
        tick = model.tick(m)
        assert tick % m.tick_size == 0  # the quote grid is also the market's grid
        for now in range(m.start_ms - 60_000, m.end_ms, 11_000):
            for book in model.books_at(m, now, ticks):
                assert book.bids
                assert book.asks
                for price in _all_prices(book):
                    assert price % tick == 0
                    assert tick <= price <= 1 - tick
                assert all(lv.size >= 1 and lv.size % 1 == 0 for lv in (*book.bids, *book.asks))
                assert book.spread is not None
                assert book.spread >= 2 * 2 * tick
                bids = [lv.price for lv in book.bids]
                assert bids == sorted(bids, reverse=True)


def test_books_at_reflect_fair_value_lag_seconds_earlier(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    lag_s = 45
    model = BookModel(BookModelConfig(lag_s=lag_s))
    m = _window(markets, 1784853900)
    tick = model.tick(m)
    moved = 0
    for now in range(m.start_ms + lag_s * 1000, m.end_ms, 3_000):
        fair = model.fair_up(m, now - lag_s * 1000, ticks)
        up, _ = model.books_at(m, now, ticks)
        centre = Decimal(round(fair / float(tick))) * tick
        if 3 * tick <= centre <= 1 - 3 * tick:  # not held in by the [tick, 1 - tick] range
            assert up.mid == centre
            moved += centre != Decimal("0.5")
        # only ticks up to now - lag matter: hiding everything after it changes nothing
        assert model.books_at(m, now, ticks.until(now - lag_s * 1000)) == (up, _)
    assert moved > 10


def test_books_at_before_start_plus_lag_quote_half(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    model = BookModel()
    m = markets[50]
    for now in (m.start_ms - 3_600_000, m.start_ms, m.start_ms + 59_000):
        up, down = model.books_at(m, now, ticks)
        assert up.mid == Decimal("0.5") == down.mid


def test_books_at_window_end_are_empty(markets: list[BinaryMarket], ticks: ChainlinkTicks) -> None:
    up, down = BookModel().books_at(markets[5], markets[5].end_ms, ticks)
    assert up.bids == up.asks == down.bids == down.asks == ()


def test_books_at_near_expiry_spread_widens(markets: list[BinaryMarket], ticks: ChainlinkTicks) -> None:
    model = BookModel()
    m = markets[60]
    tick = model.tick(m)
    early, _ = model.books_at(m, m.end_ms - 120_000, ticks)
    late, _ = model.books_at(m, m.end_ms - 30_000, ticks)
    assert early.spread == 2 * tick
    assert late.spread == 4 * tick


def test_books_at_extreme_fair_value_clamped_inside_range() -> None:
    m = _market(start_ms=1_000_000, strike=100.0)
    hist = _ticks([900_000 + 1000 * i for i in range(200)], [100.0 + 0.5 * i for i in range(200)])
    model = BookModel(BookModelConfig(lag_s=0))
    assert model.fair_up(m, 1_090_000, hist) > 0.999
    up, down = model.books_at(m, 1_090_000, hist)
    assert (up.best_bid, up.best_ask) == (Decimal("0.97"), Decimal("0.99"))
    assert (down.best_bid, down.best_ask) == (Decimal("0.01"), Decimal("0.03"))


# --------------------------------------------------------------------------- strategy

REF = "chainlink:BTC/USD"
START = 1_700_000_100_000
END = START + 300_000
UP = Instrument(
    venue="polymarket",
    symbol="101",
    kind=MarketKind.BINARY,
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.01"),
    min_size=Decimal(5),
    end_ms=END,
    start_ms=START,
    strike=60_000.0,
    outcome="Up",
    condition_id="0xabc",
    correlation_group=CORRELATION_GROUP,
)
DOWN = UP.model_copy(update={"symbol": "102", "outcome": "Down"})
RISE, FALL = 2e-6, -6e-6  # per-second log drift inside the window: P(up) ≈ 0.85 / 0.23 after 120 s


def _config(**kw: object) -> PolymarketLagConfig:
    return PolymarketLagConfig.model_validate(
        {"name": "lag", "market": "polymarket:btc-5m", "reference_market": REF, **kw}
    )


def _candle(close_ms: int, price: float, market: str = REF) -> Candle:
    return Candle(
        market=market,
        ts_ms=close_ms - 1000,
        interval_ms=1000,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=0.0,
    )


def _path(until_ms: int, drift: float = 0.0, seed: int = 3) -> list[Candle]:
    """1-second reference candles from 15 min before the window, a seeded random walk + drift."""
    rng = np.random.default_rng(seed)
    first = START - 900_000
    n = (until_ms - first) // 1000 + 1
    steps = rng.normal(0.0, 4e-5, n) + drift
    steps[:900] -= drift  # drift only inside the window
    walk = np.cumsum(steps)
    logp = math.log(60_000.0) + walk - walk[900]  # anchored: 60,000 exactly at START, the strike
    return [_candle(first + 1000 * i, float(math.exp(x))) for i, x in enumerate(logp)]


def _book(inst: Instrument, ts_ms: int, ask: str, bid: str | None = None) -> OrderBook:
    bids = (BookLevel(price=Decimal(bid), size=Decimal(100)),) if bid else ()
    return OrderBook(
        market=inst.market_id,
        ts_ms=ts_ms,
        bids=bids,
        asks=(BookLevel(price=Decimal(ask), size=Decimal(100)),),
    )


def _ready(config: PolymarketLagConfig, until_ms: int, drift: float = 0.0) -> tuple[PolymarketLag, float]:
    """A strategy fed the path up to ``until_ms`` and both tokens; returns it and fair P(up) then."""
    strategy = PolymarketLag(config)
    strategy.on_instrument(UP)
    strategy.on_instrument(DOWN)
    candles = _path(until_ms, drift)
    for c in candles:
        assert strategy.on_candle(c) == []
    fv = fair_value(
        [c.close_ms for c in candles],
        [c.close for c in candles],
        until_ms,
        60_000.0,
        END,
        config.vol_window_s,
    )
    assert fv is not None
    return strategy, fv.prob_up


def test_strategy_cheap_up_ask_fires_buy() -> None:
    now = START + 120_000
    strategy, p = _ready(_config(), now, drift=RISE)
    assert 0.8 < p < 0.9
    ask = math.floor((p - 0.07) * 100) / 100
    [signal] = strategy.on_book(_book(UP, now, f"{ask:.2f}"))
    assert signal.market == "polymarket:101"
    assert signal.side is Side.BUY
    assert signal.price == ask
    assert signal.ts_ms == now
    assert signal.strategy == "lag"
    assert 0.5 < signal.strength < 1.0
    assert signal.strength == pytest.approx((p - ask) / 0.1)
    assert "Up" in signal.reason


def test_strategy_fairly_priced_books_do_not_fire() -> None:
    now = START + 120_000
    strategy, p = _ready(_config(), now, drift=RISE)
    up_ask = math.ceil((p - 0.05) * 100) / 100  # not below fair - edge
    assert strategy.on_book(_book(UP, now, f"{up_ask:.2f}")) == []
    down_ask = math.ceil((1 - p - 0.05) * 100) / 100
    assert strategy.on_book(_book(DOWN, now, f"{down_ask:.2f}")) == []
    assert strategy.state()["fired"] == {}


def test_strategy_cheap_down_ask_fires_when_btc_falls() -> None:
    now = START + 120_000
    strategy, p = _ready(_config(), now, drift=FALL)
    assert 0.15 < p < 0.3
    ask = math.floor((1 - p - 0.2) * 100) / 100
    [signal] = strategy.on_book(_book(DOWN, now, f"{ask:.2f}"))
    assert signal.market == "polymarket:102"
    assert signal.strength == 1.0  # an edge of 0.2 is over twice the 0.05 threshold
    assert strategy.on_book(_book(UP, now, f"{math.ceil((p - 0.05) * 100) / 100:.2f}")) == []


def test_strategy_one_signal_per_token_per_window() -> None:
    now = START + 120_000
    strategy, _ = _ready(_config(), now, drift=RISE)
    assert len(strategy.on_book(_book(UP, now, "0.10"))) == 1
    assert strategy.on_book(_book(UP, now, "0.10")) == []
    assert strategy.on_book(_book(UP, now + 1000, "0.05")) == []
    # the next window's Up token is a new chance
    nxt = UP.model_copy(update={"symbol": "201", "start_ms": END, "end_ms": END + 300_000})
    strategy.on_instrument(nxt)
    for c in _path(END + 60_000, drift=RISE)[-60:]:
        strategy.on_candle(c)
    [later] = strategy.on_book(_book(nxt, END + 60_000, "0.10"))
    assert later.market == "polymarket:201"
    assert "polymarket:101" not in strategy.state()["fired"]  # the ended window was forgotten
    assert strategy.on_book(_book(nxt, END + 61_000, "0.10")) == []


@pytest.mark.parametrize(
    ("case", "kw", "book_ms", "ask"),
    [
        ("too_little_time_left", {"min_time_left_s": 200}, START + 120_000, "0.10"),
        ("ask_above_max_price", {"max_price": 0.05}, START + 120_000, "0.10"),
        ("before_window_start", {}, START - 1_000, "0.10"),
        ("after_window_end", {"min_time_left_s": 0}, END, "0.10"),
    ],
)
def test_strategy_gates_block_signal(case: str, kw: dict[str, object], book_ms: int, ask: str) -> None:
    strategy, _ = _ready(_config(**kw), START + 120_000, drift=RISE)
    assert strategy.on_book(_book(UP, book_ms, ask)) == [], case


def test_strategy_stale_or_missing_reference_no_signal() -> None:
    strategy, _ = _ready(_config(), START + 20_000, drift=RISE)
    assert strategy.on_book(_book(UP, START + 20_000 + 121_000, "0.10")) == []
    bare = PolymarketLag(_config())
    bare.on_instrument(UP)
    assert bare.on_book(_book(UP, START + 10_000, "0.10")) == []
    for c in _path(START + 10_000)[-5:]:  # 5 candles: too few returns to trust σ
        bare.on_candle(c)
    assert bare.on_book(_book(UP, START + 10_000, "0.01")) == []


def test_strategy_ignores_unknown_tokens_and_foreign_instruments() -> None:
    strategy, _ = _ready(_config(), START + 120_000, drift=RISE)
    other = UP.model_copy(update={"symbol": "999"})
    assert strategy.on_book(_book(other, START + 120_000, "0.10")) == []
    spot = Instrument(
        venue="binance", symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001")
    )
    assert strategy.on_instrument(spot) == []
    assert strategy.on_instrument(UP.model_copy(update={"venue": "kalshi", "symbol": "x"})) == []
    assert len(strategy.state()["instruments"]) == 2


def test_strategy_require_momentum_needs_aligned_zscore() -> None:
    now = START + 120_000
    gated, p = _ready(_config(require_momentum=True, z_entry=2.0), now, drift=FALL)
    plain, _ = _ready(_config(), now, drift=FALL)
    cheap_down = _book(DOWN, now, f"{math.floor((1 - p - 0.2) * 100) / 100:.2f}")
    assert -2.0 < gated.zscore < 0  # falling, but not a breakout
    assert gated.on_book(cheap_down) == []
    # a +0.05% jump: z far above 2 and P(up) back near 1/2
    jump = _candle(now + 1000, (gated.reference_price or 0.0) * 1.0005)
    gated.on_candle(jump)
    plain.on_candle(jump)
    assert gated.zscore > 2.0
    down_book = _book(DOWN, now + 1000, "0.30")
    assert len(plain.on_book(down_book)) == 1  # cheap against fair...
    assert gated.on_book(down_book) == []  # ...but momentum points up
    assert len(gated.on_book(_book(UP, now + 1000, "0.30"))) == 1


def test_strategy_missing_strike_uses_reference_at_window_start() -> None:
    now = START + 120_000
    strategy, p = _ready(_config(), now, drift=RISE)
    nostrike = UP.model_copy(update={"symbol": "301", "strike": None})
    strategy.on_instrument(nostrike)
    # the path is 60,000 exactly at START, the explicit strike: the same fair value results
    ask = math.floor((p - 0.07) * 100) / 100
    [signal] = strategy.on_book(_book(nostrike, now, f"{ask:.2f}"))
    assert signal.market == "polymarket:301"
    assert signal.strength == pytest.approx((p - ask) / 0.1)


def test_strategy_duplicate_and_foreign_candles_ignored() -> None:
    strategy, _ = _ready(_config(), START + 30_000)
    before = strategy.state()
    last = _path(START + 30_000)[-1]
    assert strategy.on_candle(last) == []
    assert strategy.on_candle(_candle(START + 31_000, 1.0, market="binance:ETH/USDT")) == []
    assert strategy.state() == before


def test_strategy_state_round_trip_is_exact() -> None:
    now = START + 100_000
    config = _config(require_momentum=False)
    original, _ = _ready(config, now, drift=RISE)
    original.on_book(_book(UP, now, "0.10"))
    state = json.loads(json.dumps(original.state()))
    clone = PolymarketLag(config)
    clone.restore(state)
    assert clone.state() == original.state()
    future = _path(now + 60_000, drift=RISE)[-60:]
    for c in future:
        assert clone.on_candle(c) == original.on_candle(c)
    for book in (_book(UP, now + 60_000, "0.05"), _book(DOWN, now + 60_000, "0.02")):
        assert clone.on_book(book) == original.on_book(book)
    assert clone.state() == original.state()
    with pytest.raises(ValueError, match="state of a"):
        clone.restore({"kind": "momentum_breakout"})


def test_build_strategy_registry_gives_polymarket_lag() -> None:
    assert isinstance(build_strategy(_config()), PolymarketLag)


def test_strategy_replay_hour_on_model_books_signals_at_most_once_per_token(
    markets: list[BinaryMarket], ticks: ChainlinkTicks
) -> None:
    """One hour of the real day: 1-second Chainlink candles and modelled books, 2-second steps."""
    config = _config(edge=0.05)
    strategy = PolymarketLag(config)
    model = BookModel()
    window = [m for m in markets if 1784880000000 <= m.start_ms < 1784883600000]
    for m in window:
        for inst in m.instruments():
            strategy.on_instrument(inst)
    first, last = window[0].start_ms - 900_000, window[-1].end_ms
    lo, hi = ticks.index_at(first - 1) + 1, ticks.index_at(last) + 1
    candles = iter(
        _candle(int(t) + 1000, float(p)) for t, p in zip(ticks.ts_ms[lo:hi], ticks.price[lo:hi], strict=True)
    )
    pending = next(candles, None)
    signals = []
    for m in window:
        for now in range(m.start_ms, m.end_ms, 2_000):
            while pending is not None and pending.close_ms <= now:
                strategy.on_candle(pending)
                pending = next(candles, None)
            for book in model.books_at(m, now, ticks):
                for s in strategy.on_book(book):
                    assert s.price == float(book.best_ask or 0)
                    assert m.start_ms <= s.ts_ms <= m.end_ms - 30_000
                    signals.append(s)
    markets_signalled = [s.market for s in signals]
    assert len(markets_signalled) == len(set(markets_signalled))
    assert signals  # a 60 s lag on a moving BTC leaves some edge in an hour
