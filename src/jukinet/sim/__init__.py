"""Faithful simulators of the peers: J-LIS national servers and the municipal CS."""
