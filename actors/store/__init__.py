"""The LMDB store: one environment, typed records, write-ahead orders."""
