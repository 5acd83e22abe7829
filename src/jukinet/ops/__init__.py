"""Operations: retention and erasure (A8, :mod:`jukinet.retention`), statistics and charts
(A9, :mod:`jukinet.ops.statistics`, :mod:`jukinet.charts`), the daily schedule inside
``jukinet serve`` (:mod:`jukinet.scheduler`), and what the 運用担当者 watches (A7): the
operations status (:mod:`jukinet.ops.status`), Prometheus metrics (:mod:`jukinet.observability.metrics`) and
the structured logs (:mod:`jukinet.observability.logs`)."""
