"""事務1 in: the CS channel, checks, apply (U1–U4, U6)."""
