"""Every setting of raytrader as a pydantic model: the one contract between config files and code.

Unknown fields are errors (a typo must not silently fall back to a default), and every
number has its range, so a bad config fails before anything starts.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFraction = Annotated[float, Field(gt=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class Feeds(StrEnum):
    """Where prices come from, orthogonal to where orders go (``Mode``): live mode implies live."""

    REPLAY = "replay"
    LIVE = "live"


# --------------------------------------------------------------------------- strategies


class RegimeParams(Strict):
    """Trend-strength regime detector: |close - SMA(n)| / std(n), smoothed; above threshold = trending."""

    period: int = Field(default=50, ge=2)
    smoothing: int = Field(default=20, ge=1)
    threshold: float = Field(default=0.5, gt=0)


class StrategyBase(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$", description="instance name, unique")
    market: str = Field(
        min_length=1,
        description="the market the strategy trades, venue:symbol (with ``markets``: the first of them)",
    )
    markets: tuple[str, ...] = Field(
        default=(),
        description="every market the strategy trades, each with its own indicator state and checkpoint; "
        "``market = X`` alone means ``markets = [X]``; an entry may be a glob (``binance:*/USDT``), "
        "resolved on load against replay.candles (config/market_patterns.py)",
    )
    enabled: bool = True
    allocation: Fraction = Field(default=0.2, description="share of equity this strategy may commit")
    peak_hours_only: bool = False
    min_market_age_h: float | None = Field(
        default=None, ge=0, description="overrides the portfolio's market-age gate for this strategy"
    )
    max_spread_fraction: float | None = Field(
        default=None, gt=0, le=1, description="overrides the portfolio's spread gate for this strategy"
    )
    exits: ExitConfig | None = Field(
        default=None, description="this strategy's exit plan; the top-level [exits] when absent"
    )

    @model_validator(mode="before")
    @classmethod
    def _market_from_markets(cls, data: object) -> object:
        """``markets = [A, B]`` alone names ``market`` A (a missing market is reported as such)."""
        if isinstance(data, dict) and "market" not in data and data.get("markets"):
            markets = data["markets"]
            if isinstance(markets, list | tuple) and isinstance(markets[0], str):
                return {**data, "market": markets[0]}
        return data

    @model_validator(mode="after")
    def _one_or_many_markets(self) -> Self:
        markets = self.markets or (self.market,)
        if any(":" not in m for m in markets):
            raise ValueError(f"a market id is venue:symbol, got {list(markets)}")
        if len(set(markets)) != len(markets):
            raise ValueError(f"markets are listed once each, got {list(markets)}")
        if self.market != markets[0]:
            raise ValueError(f"market {self.market!r} must be the first of markets {list(markets)}")
        object.__setattr__(self, "markets", markets)
        return self

    def for_market(self, market: str) -> Self:
        """This strategy's config as it runs on one of its markets (one core per market)."""
        if market not in self.markets:
            raise ValueError(f"strategy {self.name!r} does not trade {market!r}")
        return self.model_copy(update={"market": market, "markets": (market,)})


class MomentumBreakoutConfig(StrategyBase):
    """Polymarket bot design: last N closes of the bar size, population std, z > threshold goes long."""

    kind: Literal["momentum_breakout"] = "momentum_breakout"
    bar_ms: int = Field(default=300_000, ge=60_000, description="bar size the z-score is taken over")
    lookback: int = Field(default=20, ge=2)
    z_entry: float = Field(default=2.0, gt=0)
    z_full_strength: float = Field(default=3.0, gt=0, description="strength = min(1, z / this)")


class MeanReversionConfig(StrategyBase):
    """Algo-trading guide: Bollinger(20, 2) + RSI(14): buy oversold below the band, sell overbought above."""

    kind: Literal["mean_reversion"] = "mean_reversion"
    bb_period: int = Field(default=20, ge=2)
    bb_std: float = Field(default=2.0, gt=0)
    rsi_period: int = Field(default=14, ge=2)
    rsi_buy: float = Field(default=30.0, ge=0, le=100)
    rsi_sell: float = Field(default=70.0, ge=0, le=100)
    regime_filter: bool = Field(default=False, description="stand aside while the market trends")
    regime: RegimeParams = RegimeParams()

    @model_validator(mode="after")
    def _rsi_order(self) -> MeanReversionConfig:
        if self.rsi_buy >= self.rsi_sell:
            raise ValueError(f"rsi_buy ({self.rsi_buy}) must be below rsi_sell ({self.rsi_sell})")
        return self


class MlMomentumConfig(StrategyBase):
    """Algo-trading guide: random forest on momentum features; confidence = predicted probability."""

    kind: Literal["ml_momentum"] = "ml_momentum"
    horizon: int = Field(default=5, ge=1, description="label: close this many bars ahead > close now")
    n_estimators: int = Field(default=100, ge=1)
    seed: int = 42
    min_train_rows: int = Field(default=500, ge=50)
    retrain_every: int = Field(default=1440, ge=1, description="bars between retrains")
    max_train_rows: int = Field(default=20_000, ge=100)
    entry_probability: float = Field(default=0.6, ge=0.5, le=1.0)
    exit_probability: float = Field(default=0.4, ge=0.0, le=0.5)
    max_depth: int | None = Field(default=8, ge=1)
    model_swap_delay_bars: int = Field(
        default=60,
        ge=0,
        description="a retrain decided at bar N is used from bar N + this (its fit runs meanwhile, "
        "off the feed's path); 0: from bar N, the fit holding that bar",
    )


class PolymarketLagConfig(StrategyBase):
    """Polymarket bot design: fair up-probability from the BTC path, buy the token trading below it."""

    kind: Literal["polymarket_lag"] = "polymarket_lag"
    reference_market: str = Field(
        default="binance:BTC/USDT", description="the price path the fair value uses"
    )
    edge: float = Field(default=0.05, gt=0, lt=1, description="buy when ask < fair - edge")
    vol_window_s: int = Field(default=900, ge=30, description="realised volatility window")
    min_time_left_s: int = Field(default=30, ge=0)
    max_price: float = Field(default=0.95, gt=0, lt=1)
    momentum_lookback: int = Field(default=20, ge=2)
    require_momentum: bool = Field(default=False, description="also require |z| > z_entry on the reference")
    z_entry: float = Field(default=2.0, gt=0)


StrategyConfig = Annotated[
    MomentumBreakoutConfig | MeanReversionConfig | MlMomentumConfig | PolymarketLagConfig,
    Field(discriminator="kind"),
]
STRATEGY_KINDS = ("momentum_breakout", "mean_reversion", "ml_momentum", "polymarket_lag")


# --------------------------------------------------------------------------- portfolio, exits, fees


class PortfolioConfig(Strict):
    initial_capital: Decimal = Field(default=Decimal(10_000), gt=0)
    risk_per_trade: PositiveFraction = 0.02
    max_position_fraction: PositiveFraction = Field(default=0.10, description="notional cap per trade")
    max_concurrent_positions: int = Field(default=10, ge=1)
    max_per_correlation_group: int = Field(
        default=3, ge=1, description="most open positions that may move together (see ``correlation``)"
    )
    correlation: Literal["measured", "groups"] = Field(
        default="measured",
        description="measured: positions count together when their markets' rolling return correlation "
        "exceeds correlation_threshold (fixed groups where too few bars are shared); groups: by the "
        "instruments' fixed correlation_group labels only",
    )
    correlation_threshold: float = Field(default=0.7, gt=0, lt=1)
    correlation_window_bars: int = Field(
        default=500, ge=30, description="bar returns per market in the rolling correlation"
    )
    position_scope: Literal["market", "strategy"] = Field(
        default="market",
        description="market: one open position per market across all strategies (no overlapping "
        "positions in a market; the safe default); strategy: one per market per strategy",
    )
    min_market_age_h: float = Field(default=24.0, ge=0)
    max_spread_fraction: PositiveFraction = 0.01
    min_book_depth: Decimal = Field(default=Decimal(500), ge=0, description="top-N levels, both sides")
    book_depth_levels: int = Field(default=5, ge=1)
    peak_hours_utc: tuple[int, int] = Field(default=(12, 23), description="[start, end) hour, UTC")
    cash_reserve: Fraction = 0.10
    kelly_fraction: float | None = Field(default=None, gt=0, le=1, description="fractional Kelly on top")
    kelly_win_rate: Fraction = 0.55
    scale_by_strength: bool = True
    max_order_notional: Decimal | None = Field(
        default=None,
        gt=0,
        description="pre-trade limit: an entry is sized down to this notional (quote currency); None = off",
    )
    max_orders_per_s: int = Field(
        default=10, ge=1, description="pre-trade limit: entries approved per rolling second of data time"
    )
    max_daily_loss_fraction: PositiveFraction | None = Field(
        default=0.05,
        description="pre-trade limit: a UTC day's loss (of its starting equity) that halts entries until "
        "the next UTC day; exits go on; None = off",
    )
    max_open_orders_per_market: int = Field(
        default=4, ge=1, description="pre-trade limit: no entry into a market holding this many open orders"
    )
    signal_replay_horizon_h: float = Field(
        default=24.0,
        gt=0,
        description="a market a strategy entered is remembered (so a replayed signal is refused) until its "
        "signal is this much older than the strategy's newest entry; a signal that old is refused outright",
    )

    @field_validator("peak_hours_utc")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not (0 <= start <= 23 and 1 <= end <= 24 and start < end):
            raise ValueError(f"expected 0 <= start < end <= 24, got {list(value)}")
        return value


class ExitConfig(Strict):
    """The exit plan every position runs; percentages are fractions of the entry price."""

    managed: bool = Field(
        default=True,
        description="false: no targets, stop, time or trailing exit; only the strategy's exit signal "
        "(or settlement) closes a position, as in the algo-trading guide's backtests",
    )
    target_one_pct: PositiveFraction = 0.02
    target_one_fraction: PositiveFraction = Field(default=0.5, description="share sold at target one")
    target_two_pct: PositiveFraction = 0.05
    stop_pct: PositiveFraction = 0.03
    time_exit_s: int = Field(default=4 * 3600, ge=1)
    time_exit_band_pct: Fraction = Field(default=0.005, description="'no movement' = within this band")
    trailing_activate_pct: PositiveFraction = 0.10
    trailing_lock_pct: Fraction = 0.05
    trailing_distance_pct: PositiveFraction = 0.05
    entry_timeout_s: int = Field(
        default=300, ge=1, description="an entry not (wholly) filled this long after its signal is cancelled"
    )
    exit_order_timeout_s: int = Field(
        default=120, ge=1, description="an exit limit unfilled this long is stuck"
    )
    exit_slippage_pct: Fraction = Field(
        default=0.01, description="a closing sell is a limit this far below the trigger price"
    )
    max_close_slippage_pct: PositiveFraction = Field(
        default=0.10,
        description="a closing sell is never priced further below the mark (or entry) than this, "
        "however often it is re-priced",
    )
    max_close_rejections: int = Field(
        default=5, ge=1, description="a close the venue rejected this many times in a row waits for a person"
    )
    close_retry_backoff_s: float = Field(
        default=5.0, gt=0, description="wait after a rejected close, doubled per rejection (capped at 5 min)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ExitConfig:
        if self.target_two_pct < self.target_one_pct:
            raise ValueError("target_two_pct must be at least target_one_pct")
        if self.trailing_lock_pct >= self.trailing_activate_pct:
            raise ValueError("trailing_lock_pct must be below trailing_activate_pct")
        return self


class VenueFees(Strict):
    maker: Fraction = 0.001
    taker: Fraction = 0.002


class PolymarketFees(Strict):
    """Polymarket's crypto fee schedule: fee = shares * rate * (p * (1 - p)) ** exponent, taker only."""

    rate: Fraction = 0.07
    exponent: float = Field(default=1.0, gt=0)
    taker_only: bool = True


class CostConfig(Strict):
    binance: VenueFees = VenueFees()
    polymarket: PolymarketFees = PolymarketFees()
    slippage_pct: Fraction = 0.001


# --------------------------------------------------------------------------- runtime


BUNDLED_CANDLES: dict[str, Path] = {
    f"binance:{base}/USDT": Path(f"ops/data/binance/{base}USDT-1m-2024-10-01_2024-11-04.csv.gz")
    for base in ("BTC", "ETH", "SOL", "XRP")
}
"""Real Binance 1m klines of four markets over the same five weeks (provenance: ops/data/SOURCE.md)."""


class ReplayConfig(Strict):
    candles: dict[str, Path] = Field(
        default_factory=lambda: dict(BUNDLED_CANDLES),
        description="market id -> candle file (CSV, JSON or Parquet; .gz read as such), one feed each",
    )
    polymarket_markets: Path = Path("ops/data/polymarket/BTC-5m-markets-2026-07-24.jsonl.gz")
    chainlink_ticks: Path = Path("ops/data/polymarket/BTCUSD-chainlink-2026-07-24.csv.gz")
    speed: float | Literal["max"] = Field(default="max", description="replay multiplier or 'max'")

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: float | str) -> float | str:
        if isinstance(value, float) and value <= 0:
            raise ValueError("speed must be positive or 'max'")
        return value


class SupervisionConfig(Strict):
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    suspect_after_beats: int = Field(default=3, ge=1)
    restart_budget: int = Field(default=10, ge=0, description="restarts per actor per budget window")
    restart_window_s: float = Field(default=3600.0, gt=0)
    restart_backoff_s: float = Field(default=0.5, ge=0)
    orphan_grace_s: float = Field(default=5.0, ge=0)
    stuck_transient_s: float = Field(default=30.0, gt=0)


class RuntimeConfig(Strict):
    """How the Ray runtime runs: where, how fast, how often it checkpoints."""

    namespace: str = Field(default="raytrader", min_length=1, description="Ray namespace of the actors")
    cancel_on_stop: bool = Field(default=True, description="false keeps resting orders at the venue on stop")
    feed_batch: int = Field(default=16, ge=1, le=10_000, description="events per delivery at speed max")
    feed_buffer: int = Field(default=10_000, ge=100, description="events kept for replays to consumers")
    feed_checkpoint_batches: int = Field(
        default=32, ge=1, description="a feed writes its position after this many batches (1: every batch)"
    )
    feed_checkpoint_ms: int = Field(
        default=1_000, ge=0, description="... or this many wall ms since, whichever comes first"
    )
    detach_strategies: bool = Field(
        default=False,
        description=(
            "a feed does not wait for the strategies and the portfolio: each gets its events in order, "
            "one call in flight, the ones that arrive meanwhile coalesced into its next call"
        ),
    )
    detached_max_pending: int = Field(
        default=256, ge=1, description="... and waits for a consumer holding more events than this unsent"
    )
    book_interval_ms: int = Field(default=5_000, ge=100, description="modelled Polymarket book cadence")
    strategy_checkpoint_s: float = Field(default=2.0, gt=0, description="strategy state checkpoint period")
    position_timer_s: float = Field(default=1.0, gt=0, description="time-exit / stuck-order check period")
    position_pool: int = Field(
        default=2,
        ge=0,
        le=64,
        description="pre-started position actors entries are assigned to (0: none; see README)",
    )
    position_pool_reuse: bool = Field(
        default=True,
        description="a pooled actor whose position closed rejoins the pool instead of being reaped",
    )
    quiet_bands: bool = Field(
        default=True,
        description="a feed skips a held position's prices inside the band where its exits cannot act, "
        "and marks it itself (false: every price goes to every position; see README)",
    )
    venue_poll_s: float = Field(
        default=1.0, gt=0, description="live venues: fill and order-status poll period"
    )
    listing_refresh_s: float = Field(
        default=60.0, gt=0, description="live Polymarket: re-list markets this often"
    )
    spread_actors: bool = Field(default=False, description="place actors across nodes (Ray SPREAD)")
    actor_cpus: float = Field(default=0.0, ge=0, description="CPUs per actor (0: pack onto any node)")
    fault_injection: bool = Field(
        default=False,
        description="chaos runs only: the paper venue's and the store's fault hooks answer "
        "(venue rejections, partial fills, venue errors, a full map); refused in live mode",
    )


class MetricsConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


BINANCE_REST_URL = "https://api.binance.com"
BINANCE_STREAM_URL = "wss://stream.binance.com:9443/ws"
"""Binance's spot stream host (ccxt.pro's default): not the REST host with a ws scheme."""
POLYMARKET_REST_URL = "https://clob.polymarket.com"
POLYMARKET_MARKET_WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
POLYMARKET_RTDS_URL = "wss://ws-live-data.polymarket.com"
"""Polymarket's Real-Time Data Socket: the Chainlink prices its crypto markets settle on."""


class VenueEndpoint(Strict):
    url: str
    ws_url: str | None = None


class UserStreamConfig(Strict):
    """A live venue's pushed order updates and fills (Binance's user data stream); REST polling
    stays as the backstop that catches up after a drop and reconciles."""

    enabled: bool = Field(default=True, description="fills and order updates pushed by the venue")
    keepalive_s: float = Field(default=1800.0, gt=0, description="listen key keep-alive (Binance: 30 min)")
    backstop_poll_s: float = Field(
        default=30.0, gt=0, description="REST fill poll period while the stream is up (at least venue_poll_s)"
    )
    reconnect_s: float = Field(default=1.0, gt=0, description="wait before re-opening a dropped stream")


BINANCE_TIMEFRAMES_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}
"""The kline intervals Binance serves (ccxt's names), each in ms (``1M``: ccxt's 30 days)."""


def _binance_timeframe(value: str) -> str:
    if value not in BINANCE_TIMEFRAMES_MS:
        raise ValueError(f"{value!r} is not a Binance timeframe (one of {', '.join(BINANCE_TIMEFRAMES_MS)})")
    return value


class BinanceEndpoint(VenueEndpoint):
    url: str = BINANCE_REST_URL
    """The real venue unless set: so one nested override (``live.binance.user_stream.enabled``)
    keeps the rest of the section's defaults."""
    user_stream: UserStreamConfig = UserStreamConfig()
    timeframe: str = Field(
        default="1m", description="the candles a live Binance feed reads (and warms up on)"
    )
    timeframes: dict[str, str] = Field(
        default_factory=dict, description="per-market timeframe overrides: market id -> timeframe"
    )

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        return _binance_timeframe(value)

    @field_validator("timeframes")
    @classmethod
    def _known_timeframes(cls, value: dict[str, str]) -> dict[str, str]:
        for tf in value.values():
            _binance_timeframe(tf)
        return value

    order_book: bool = Field(
        default=True,
        description="live feeds stream each watched market's order book (conflated) for the liquidity "
        "gate; false: candles only, the gate skipped as bookless",
    )

    def timeframe_of(self, market: str) -> str:
        """The candle timeframe of ``market``'s live feed: its override, else ``timeframe``."""
        return self.timeframes.get(market, self.timeframe)


class PolymarketEndpoint(VenueEndpoint):
    url: str = POLYMARKET_REST_URL
    """As for Binance; ``ws_url`` unset resolves to the real market channel for the real host."""
    user_stream: UserStreamConfig = UserStreamConfig()
    """The user channel beside ``ws_url`` (``.../ws/market`` -> ``.../ws/user``); ``keepalive_s``
    is unused (the channel is kept alive by a text PING every 10 s)."""
    rtds_url: str | None = None
    """The Chainlink reference (``chainlink:BTC/USD``) on live data; unset: Polymarket's RTDS for the
    real host, ``<host>/rtds`` for any other (a sandbox)."""


class Secrets(Strict):
    """Credentials: only from the environment or a file, never from a committed config value."""

    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    polymarket_private_key: SecretStr | None = None


class LiveConfig(Strict):
    confirm: bool = Field(default=False, description="live trading must be asked for explicitly")
    min_paper_trades: int = Field(default=30, ge=0)
    override_paper_minimum: bool = False
    paper_state_dir: Path = Field(
        default=Path("state"), description="the paper runs' store whose trades count towards min_paper_trades"
    )
    binance: BinanceEndpoint = BinanceEndpoint()
    """``ws_url`` unset: the streams of the configured host (ccxt's stream host for the real venue)."""
    polymarket: PolymarketEndpoint = PolymarketEndpoint()
    """``ws_url`` unset: the real market channel for the real host, ``<host>/ws/market`` else."""


class NotifyConfig(Strict):
    """Alerts that reach a person without Alertmanager: the supervisor posts them to a webhook, mails them,
    or both (each channel is off until configured: ``webhook_url``; ``smtp_host`` with ``smtp_to``).

    The SMTP password, like every secret, comes only from the environment:
    ``RAYTRADER_NOTIFY__SMTP_PASSWORD`` or ``RAYTRADER_NOTIFY__SMTP_PASSWORD_FILE`` (a config file or a
    command-line override holding it is refused).
    """

    webhook_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="each alert is POSTed here as JSON"
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="per attempt")
    webhook_retries: int = Field(default=3, ge=0, le=10, description="further attempts after a failed one")
    retry_backoff_s: float = Field(default=0.5, ge=0, description="first retry delay, doubled per retry")
    smtp_host: str | None = Field(default=None, min_length=1, description="mail alerts through this server")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="raytrader@localhost", min_length=3)
    smtp_to: list[Annotated[str, Field(min_length=3)]] = Field(default_factory=list)
    smtp_user: str | None = Field(default=None, min_length=1, description="log in (after STARTTLS if set)")
    smtp_password: SecretStr | None = Field(default=None, description="environment only, never a file")
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    cooldown_s: float = Field(
        default=300.0, ge=0, description="an alert of one kind and key is sent at most once per cooldown"
    )
    silent_after_s: float = Field(
        default=120.0, gt=0, description="system_silent fires after this long without a heartbeat"
    )
    no_activity_s: float | None = Field(
        default=3600.0,
        gt=0,
        description="no_activity fires when nothing was traded and no signal evaluated for this long, "
        "heartbeats or not (the algo-trading guide's health check); counted on the runtime's clock: "
        "wall time, times the replay speed in a paced paper replay; None = no such alert",
    )
    daily_loss_limit: Fraction | None = Field(
        default=0.05,
        description="daily_loss_limit fires when a UTC day's loss reaches this share of its starting equity "
        "(the entry halt itself is portfolio.max_daily_loss_fraction); None = no such alert",
    )

    @model_validator(mode="after")
    def _mail_has_recipients(self) -> NotifyConfig:
        if self.smtp_host is not None and not self.smtp_to:
            raise ValueError("smtp_host is set but smtp_to is empty: expected at least one recipient")
        return self


class Settings(Strict):
    mode: Mode = Mode.PAPER
    feeds: Feeds = Field(
        default=Feeds.REPLAY,
        description="market data source: replay files, or the venues' public live feeds "
        "(paper trading on live data; live mode always reads live feeds)",
    )
    state_dir: Path = Path("state")
    strategies: list[StrategyConfig] = Field(default_factory=list)
    portfolio: PortfolioConfig = PortfolioConfig()
    exits: ExitConfig = ExitConfig()
    costs: CostConfig = CostConfig()
    replay: ReplayConfig = ReplayConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    metrics: MetricsConfig = MetricsConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    live: LiveConfig = LiveConfig()
    secrets: Secrets = Secrets()
    notify: NotifyConfig = NotifyConfig()

    @model_validator(mode="after")
    def _portfolio_consistent(self) -> Settings:
        names = [s.name for s in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategy names must be unique, repeated: {duplicates}")
        total = sum(s.allocation for s in self.strategies if s.enabled) + self.portfolio.cash_reserve
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"strategy allocations plus portfolio.cash_reserve must be <= 100%, got {total:.0%}"
            )
        if self.mode is Mode.LIVE and self.runtime.fault_injection:
            raise ValueError("runtime.fault_injection is for paper chaos runs: it cannot be on in live mode")
        if self.mode is Mode.LIVE:
            missing = self.missing_live_secrets()
            if missing:
                raise ValueError(
                    f"live mode needs secrets {missing} (from env RAYTRADER_SECRETS__* or *_FILE)"
                )
        return self

    def missing_live_secrets(self) -> list[str]:
        venues = {m.split(":", 1)[0] for s in self.strategies if s.enabled for m in s.markets}
        needed: list[str] = []
        if "binance" in venues:
            needed += ["binance_api_key", "binance_api_secret"]
        if "polymarket" in venues:
            needed.append("polymarket_private_key")
        return [f"secrets.{n}" for n in needed if getattr(self.secrets, n) is None]

    def strategy(self, name: str) -> StrategyConfig:
        for s in self.strategies:
            if s.name == name:
                return s
        raise KeyError(name)
