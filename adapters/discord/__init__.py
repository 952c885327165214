"""The Discord adapter: embeds in channels, ``/papers`` app commands, reactions and a persistent Save button."""
