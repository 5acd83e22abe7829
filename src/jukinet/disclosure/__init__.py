"""事務3 — disclosure to residents: request intake and 突合 (O1), disclosure forms (PDF, IPAmj明朝),
who received my data (O3), correction requests through investigation (O2), 利用停止請求 (O4), 通報
to the municipality (O5), the form register (A5) and the inquiry log (A10). ADR 0019–0021, 0039;
one module per concern, composed in :mod:`jukinet.disclosure.service` (ADR 0054)."""
