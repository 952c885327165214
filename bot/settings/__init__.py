"""Settings: config/paperbot.toml for defaults, the environment for overrides and secrets (``schema``)."""
