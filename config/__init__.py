"""Settings models and the shipped TOML configs."""
