"""Queries to the national servers (事務4; N1, P3): 全国サーバ and 附票全国サーバ of J-LIS.

HTTPS with mutual TLS, presenting the prefectural server's certificate (ADR 0005), to
``POST /national/v1/query`` of the national server (juki) or national fuhyo server (fuhyo) — the
interface of :mod:`jukinet.sim.national`: exactly one of ``{"juminhyo_code"}``, ``{"kojin_bango"}``
(全国サーバ only) or 4情報 ``{"name", "birth_date"[, "sex"][, "address"]}``; the answer is
``{"count", "results": [record, …]}``. Personal data goes in the POST body only; nothing of the
request or answer is logged here (the caller writes the provision record and operation log).
"""

from __future__ import annotations

import threading
from typing import Optional

import httpx

from jukinet.pki import crl
from jukinet.config import Config
from jukinet.errors import JukinetError


class NationalUnavailable(JukinetError):
    code = "NATIONAL_UNAVAILABLE"
    message = "全国サーバに照会できませんでした。時間をおいて再度照会してください。"


class NationalRefused(JukinetError):
    """The national server answered with an error (its stable code, our Japanese message)."""


def query_body(keys) -> dict:
    """The national query for a :class:`jukinet.provision.items.Keys`."""
    if keys.kind == "juminhyo_code":
        return {"juminhyo_code": keys.juminhyo_code}
    if keys.kind == "kojin_bango":
        return {"kojin_bango": keys.kojin_bango}
    f = keys.four
    body = {"name": f.name, "birth_date": f.birth_date.isoformat()}
    if f.sex:
        body["sex"] = f.sex
    if f.address:
        body["address"] = f.address
    return body


class NationalClient:
    """One mutually authenticated HTTPS client per national server, made on first use."""

    def __init__(self, config: Config, *, timeout: Optional[float] = None):
        self.config = config
        self.timeout = timeout if timeout is not None else config.provision.national_timeout
        self._clients: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._contexts = crl.OutboundContexts(config)

    def _client(self, register: str) -> httpx.Client:
        with self._lock:
            try:   # the CRLs in force (ADR 0030); a new CRL gives a new context and client
                ctx = self._contexts.current()
            except crl.CrlUnavailable:
                raise NationalUnavailable("CRL_UNAVAILABLE", "証明書失効リストを確認できないため全国サーバに照会できません。") from None
            except (OSError, ValueError):
                raise NationalUnavailable() from None
            old = self._clients.get(register)
            if old is not None and old[0] is ctx:
                return old[1]
            if old is not None:
                old[1].close()
            nat = self.config.national
            port = nat.port if register == "juki" else nat.fuhyo_port
            c = httpx.Client(base_url=f"https://{nat.host}:{port}", verify=ctx, timeout=self.timeout,
                             limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))
            self._clients[register] = (ctx, c)
            return c

    def query(self, register: str, body: dict) -> list[dict]:
        if register == "fuhyo" and "kojin_bango" in body:
            raise JukinetError("KEY_NOT_ALLOWED", "附票全国サーバには個人番号で照会できません。", field="kojin_bango")
        try:
            r = self._client(register).post("/national/v1/query", json=body)
        except httpx.HTTPError as e:
            if crl.outbound_code(e) == "CERT_REVOKED":
                raise NationalUnavailable("NATIONAL_CERT_REVOKED",
                                          "全国サーバの証明書が失効しているため照会できません。") from None
            raise NationalUnavailable() from None
        if r.status_code == 400:
            try:
                code = str(r.json()["error"]["code"])[:40]
            except Exception:  # noqa: BLE001
                code = "NATIONAL_REFUSED"
            raise NationalRefused(code, "全国サーバが照会を受け付けませんでした (照会条件を確認してください)。")
        if r.status_code != 200:
            raise NationalUnavailable()
        try:
            results = r.json()["results"]
            assert isinstance(results, list)
        except Exception:  # noqa: BLE001
            raise NationalUnavailable() from None
        return results

    def close(self) -> None:
        with self._lock:
            for _, c in self._clients.values():
                c.close()
            self._clients.clear()
