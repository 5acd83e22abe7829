"""事務1 out: delivery of every applied update to the national servers (U5)."""
