"""T27: the chart checked against a small independent model by a hypothesis state machine."""
