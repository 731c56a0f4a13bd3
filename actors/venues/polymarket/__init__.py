"""Polymarket's CLOB through py-clob-client."""
