"""Tables of 事務1 (intake from 市町村CS, outbox to the national servers, communication log).

Defined on the registers' metadata (``jukinet.store.tables.juki_metadata`` / ``fuhyo_metadata``);
created by migration ``*_0002``.
"""
