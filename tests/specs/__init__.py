"""The platforms' published API specs, vendored unmodified (gzipped) with their licences, and the checks
every stand-in call goes through (README.md beside this file)."""
