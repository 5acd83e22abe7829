"""事務3 — disclosure to residents: request intake and 突合 (O1), disclosure forms (PDF, IPAmj明朝),
who received my data (O3), correction requests through investigation (O2), the form register (A5)
and the inquiry log (A10). ADR 0019–0021."""
