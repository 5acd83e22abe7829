"""事務5 — 本人確認情報の検索 (S1): 4情報 search over both registers, and the detail view."""

from jukinet.search.service import DetailCommand, SearchCommand, detail, search  # noqa: F401
