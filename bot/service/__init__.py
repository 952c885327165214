"""The running process: the runner, health probes, metrics and operator commands."""
