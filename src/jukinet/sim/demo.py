"""The demo's background (``jukinet demo``): the national server simulators and a few municipal CS
simulators sending a slow stream of changes through the real CS channel; every ``REPORT_POLL`` sends
they also take and acknowledge the prefecture's 通報 (O5, ADR 0039) into ``DIR/sim/cs-reports/``."""

from __future__ import annotations

import threading

from jukinet import geo
from jukinet.bootstrap import Installation
from jukinet.sim.cs import CsClient, EventGenerator, ReportInbox, receive_reports
from jukinet.sim.national import start_national


_MIE_DEMO = ("242012", "242021", "242047", "243418")
#: a demo CS polls for 通報 once every this many sends
REPORT_POLL = 10


def demo_municipalities(prefecture_code: str, n: int = 4) -> tuple[str, ...]:
    """The municipalities whose CS the demo simulates.

    >>> demo_municipalities("240001"), len(demo_municipalities("230006"))
    (('242012', '242021', '242047', '243418'), 4)
    """
    pref = geo.prefecture(prefecture_code)
    if pref.code == geo.mie.PREFECTURE_CODE:
        return _MIE_DEMO[:n]
    return tuple(sorted(m.code for m in sorted(pref.municipalities, key=lambda m: -m.weight)[:n]))


class DemoPeers:
    """The national sims and a few CS simulators sending a slow stream (``jukinet demo``).

    ``municipalities``: the CS that send; by default four of the installation's prefecture (for 三重県
    津市, 四日市市, 松阪市 and 菰野町; elsewhere the four with the largest sampling weight)."""

    def __init__(self, installation: Installation, municipalities=None, interval: float = 3.0, batch: int = 1,
                 *, server_ca=None, national: bool = True):
        """``server_ca``: the CA of the server the CS talk to when it is not the prefecture's own (a
        center, ADR 0036); ``national``: start this prefecture's national simulators too."""
        self.installation = installation
        self.server_ca = server_ca
        self.national = national
        self.config = installation.config
        self.municipalities = municipalities if municipalities is not None else demo_municipalities(
            self.config.prefecture_code)
        self.interval = interval
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.running = []
        self.sent = 0

    def start(self) -> "DemoPeers":
        self.running = start_national(self.config) if self.national else []
        for i, code in enumerate(self.municipalities):
            t = threading.Thread(target=self._stream, args=(code, i), daemon=True, name=f"demo-cs-{code}")
            t.start()
            self.threads.append(t)
        return self

    def _stream(self, code: str, offset: int) -> None:
        if self.stop_event.wait(2.0 + offset * self.interval / max(1, len(self.municipalities))):
            return
        gen = EventGenerator.from_registers(self.installation.registers, code)
        client = CsClient(self.config, code, server_ca=self.server_ca)
        inbox = ReportInbox(self.config, code)
        n = 0
        try:
            while not self.stop_event.is_set():
                try:
                    client.send(gen.next())
                    self.sent += 1
                    n += 1
                    if n % REPORT_POLL == 0:
                        receive_reports(client, inbox)
                except Exception:  # noqa: BLE001 - server not up yet, or shutting down
                    pass
                self.stop_event.wait(self.interval)
        finally:
            client.close()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(5)
        for t, store in self.running:
            t.stop()
            store.close()
