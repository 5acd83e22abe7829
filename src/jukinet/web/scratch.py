"""What a screen keeps for one operator session between requests, in the server's memory only (issue 19,
ADR 0043): the last search (its form and its hits) so that paging and 「検索結果に戻る」 never run — and
log — the search again, and a viewed detail so that a reload after Post/Redirect/Get shows it again
without a second logged read.

Nothing here goes to a URL, a cookie, a log or the disk: the URL carries a page number or an opaque
random key, the data stays in this process, bound to the session (its hash) and dropped when the
session's time is up (``ttl_seconds``), when the operator logs out or locks the screen
(:meth:`Scratch.drop`), or when the process ends. Bounded: at most ``max_sessions`` sessions and
``max_items`` items per session (the oldest go first).

>>> s = Scratch(ttl_seconds=60, clock=lambda: 0.0)
>>> k = s.put("sess-a", "detail", {"x": 1})
>>> s.get("sess-a", k)
{'x': 1}
>>> s.get("sess-b", k) is None            # another session never sees it
True
>>> s.set("sess-a", "search", [1, 2]); s.get("sess-a", "search")
[1, 2]
>>> s.drop("sess-a"); s.get("sess-a", "search") is None
True
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable


class Scratch:
    def __init__(self, *, ttl_seconds: float = 8 * 3600, max_sessions: int = 500, max_items: int = 16,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_sessions, self.max_items, self.clock = ttl_seconds, max_sessions, max_items, clock
        self._data: OrderedDict[str, tuple[float, OrderedDict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def _items(self, session: str, create: bool) -> OrderedDict | None:
        now = self.clock()
        for k in [k for k, (t, _) in self._data.items() if now - t > self.ttl]:
            del self._data[k]
        if session not in self._data:
            if not create:
                return None
            while len(self._data) >= self.max_sessions:
                self._data.popitem(last=False)
            self._data[session] = (now, OrderedDict())
        t, items = self._data[session]
        self._data[session] = (now, items)
        self._data.move_to_end(session)
        return items

    def set(self, session: str, key: str, value: Any) -> None:
        with self._lock:
            items = self._items(session, True)
            items[key] = value
            items.move_to_end(key)
            while len(items) > self.max_items:
                items.popitem(last=False)

    def put(self, session: str, kind: str, value: Any) -> str:
        """Keep ``value`` under a new random key (for a URL: it says nothing about the person)."""
        key = f"{kind}-{secrets.token_urlsafe(12)}"
        self.set(session, key, value)
        return key

    def get(self, session: str, key: str) -> Any:
        with self._lock:
            items = self._items(session, False)
            return None if items is None else items.get(key)

    def drop(self, session: str) -> None:
        with self._lock:
            self._data.pop(session, None)
