"""Venue gateways behind one protocol.

Paper (the matching engine), Binance (ccxt), Polymarket (py-clob-client).
"""
