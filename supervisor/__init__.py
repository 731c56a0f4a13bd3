"""The system: runs, watches and studies the trading actors (control, research, CLI)."""
