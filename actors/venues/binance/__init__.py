"""Binance spot through ccxt."""
