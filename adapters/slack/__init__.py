"""The Slack adapter: Block Kit cards in channels, ``/papers``, reactions and Save buttons."""
