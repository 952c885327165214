"""The Redis store and the embedded Redis server used when no ``REDIS_URL`` is set."""
