"""Tables of 事務6 (consistency checks with 市町村CS) and of retention runs.

Defined on the registers' metadata; created by migration ``*_0004``.
"""
