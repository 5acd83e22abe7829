"""The operator side's safeguards (A1–A4, A6): operators and roles, terminals, WebAuthn and
password+TOTP login, sessions with an idle lock, and the hash-chained operation log; one module per
concern, composed in :mod:`jukinet.security.service` (ADR 0054)."""
