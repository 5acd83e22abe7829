"""Tables of the operator side (operation log in each register database).

Defined on the registers' metadata; created by migration ``*_0003``.
"""
