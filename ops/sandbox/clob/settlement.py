"""Settlement: a market whose window has ended resolves at the first clock step past its end.

Its open orders are cancelled, the winning token pays 1 USDC a share and the losing one 0,
straight into the USDC balance (Polymarket pays out on chain, nothing is locked), and
subscribers get ``market_resolved``. The winner is the market's *real* resolution from the
bundled data, or failing that the one the Chainlink path implies
(``actors.data.polymarket.settlement_outcome``); a market neither can resolve stays closed
with no payout.
"""

from __future__ import annotations

import logging

from actors.data.polymarket import VENUE, settlement_outcome
from actors.domain.model import ZERO
from ops.sandbox.clob.protocol import USDC
from ops.sandbox.clob.records import Payout, _Market
from ops.sandbox.clob.websocket import MarketChannel

log = logging.getLogger(__name__)


class Settlement(MarketChannel):
    """Resolution of ended markets and the payouts it makes."""

    def _resolve(self, market: _Market, t: int) -> None:
        """Window over: cancel its orders, pay the winning token 1 and the losing one 0 in USDC."""
        for token in market.info.token_ids:
            self._handle(self.engine.cancel_all(f"{VENUE}:{token}", t), t)
        market.closed = True
        winner = market.info.outcome or settlement_outcome(market.info, self.ticks)
        if winner is None:
            log.warning("sandbox clob: %s cannot be resolved from the data", market.info.slug)
            return
        market.winner = winner
        market.resolved_ms = t
        for account in self.engine.accounts():
            for token in market.info.token_ids:
                bal = self.engine.balance(account, token)
                shares = bal.free + bal.locked
                if shares <= 0:
                    continue
                self.engine.withdraw(account, token, bal.free)
                payout = market.info.payout(token, winner) or ZERO
                usdc = shares * payout
                if usdc > 0:
                    self.engine.deposit(account, USDC, usdc)
                self._payouts.append(Payout(market.info.condition_id, token, account, shares, usdc, t))
        winning = market.info.up_token_id if winner == "Up" else market.info.down_token_id
        message = {
            "event_type": "market_resolved",
            "id": str(market.raw.get("id", "")),
            "market": market.info.condition_id,
            "assets_ids": list(market.info.token_ids),
            "winning_asset_id": winning,
            "winning_outcome": winner,
            "timestamp": str(t),
            "tags": ["Crypto", "Bitcoin"],
        }
        self._emit(market.info.token_ids, message)
