"""Operations: retention and erasure (A8, :mod:`jukinet.ops.retention`), statistics and charts
(A9, :mod:`jukinet.ops.statistics`, :mod:`jukinet.ops.charts`), the daily schedule inside
``jukinet serve`` (:mod:`jukinet.ops.scheduler`), and what the 運用担当者 watches (A7): the
operations status (:mod:`jukinet.ops.status`), Prometheus metrics (:mod:`jukinet.ops.metrics`) and
the structured logs (:mod:`jukinet.ops.logs`)."""
