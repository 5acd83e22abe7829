"""Operations: retention and erasure (A8, :mod:`jukinet.ops.retention`), statistics and charts
(A9, :mod:`jukinet.ops.statistics`, :mod:`jukinet.ops.charts`), the daily schedule inside
``jukinet serve`` (:mod:`jukinet.ops.scheduler`)."""
