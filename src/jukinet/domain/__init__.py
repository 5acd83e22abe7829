"""The pure domain: the two registers' records, the 異動事由 catalogue and its checks. No I/O."""
