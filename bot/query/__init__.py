"""The query engine: the parser, the matcher, routing, the index, its table, the planner and bit sets."""
