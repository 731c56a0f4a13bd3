"""The runtime: supervisor, LMDB store, heartbeats, metrics, CLI and the in-process driver."""
