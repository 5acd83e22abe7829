"""Errors that cross a boundary: a stable machine code and a Japanese message.

Every refusal the system gives (bad input, a check that fails, a refused access) is one of
these. The ``code`` is stable and meant for programs; the ``message`` is Japanese and meant for
people. Neither ever contains personal data: messages name the *item* that is wrong, never its
value.

>>> e = JukinetError("EXAMPLE", "例です")
>>> e.code, e.message
('EXAMPLE', '例です')
>>> e.as_dict()
{'code': 'EXAMPLE', 'message': '例です'}
"""

from __future__ import annotations


class JukinetError(Exception):
    """A refusal with a stable ``code`` and a Japanese ``message`` (no personal data)."""

    code: str = "ERROR"
    message: str = "エラーが発生しました。"

    def __init__(self, code: str | None = None, message: str | None = None, *, field: str | None = None):
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        self.field = field
        super().__init__(f"{self.code}: {self.message}")

    def as_dict(self) -> dict:
        d = {"code": self.code, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d
