"""A4, A7, issue 19 (ADR 0042): everything an operator reads is in Japanese — operation names, actors
that are not people (init, bootstrap, demo, scheduler), table names, statuses — on the operator
screens and in the monthly analysis PDF/CSV; the names come from the data file
``jukinet/data/labels.toml``; no path into the documentation on a screen (a help page instead)."""

from __future__ import annotations

import csv
import io
import pathlib
import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import inspect

import jukinet
from jukinet import labels
from jukinet.audit.service import AuditService, JST, previous_month
from jukinet.security.oplog import Actor

from .actions_scan import scan
from .audit_site import site  # noqa: F401  (fixture)

SRC = pathlib.Path(jukinet.__file__).parent
#: operation names built at run time: ``"media_" + status``, ``f"operator_{status}"``
DYNAMIC = {"media_written", "media_failed", "operator_active", "operator_suspended", "operator_removed"}


def test_a4_every_operation_name_the_code_logs_has_a_japanese_label():
    found = scan(SRC)
    assert len(found) > 60 and {"login_page", "detail", "kojin_bango_reveal", "audit_report_download",
                                "stats_view", "backup_write"} <= set(found)   # the scan sees every kind of call
    missing = {name: where for name, where in found.items() if name not in labels.data()["actions"]}
    missing.update({n: "dynamic" for n in DYNAMIC if n not in labels.data()["actions"]})
    assert not missing, missing
    for name, text in labels.data()["actions"].items():
        assert re.search(r"[ぁ-んァ-ン一-龥]", text), name          # Japanese, not a copy of the name


def test_a4_labels_are_a_data_file_not_python():
    assert labels.PATH.suffix == ".toml" and labels.PATH.is_file()
    assert labels.PATH.parent.name == "data"                            # shipped as package data
    assert labels.action("media_written") == "媒体の作成完了"
    assert labels.actor("scheduler") == "自動処理 (スケジューラ)" and labels.actor("OPERATOR-JUKI") == "OPERATOR-JUKI"


def test_a7_every_table_of_the_three_databases_has_a_japanese_label(site):
    for chain in ("juki", "fuhyo", "admin"):
        with site.registers.engine(chain).connect() as conn:
            names = inspect(conn).get_table_names()
        assert "alembic_version" in names
        assert not [n for n in names if labels.table(n) == n], chain


def test_a4_oplog_screen_shows_operations_and_system_actors_in_japanese(site):
    with site.registers.admin_tx() as conn:
        site.sec.oplog.append(conn, "admin", actor=Actor("scheduler", None), action="backup_write",
                              detail={"file": "x"})
    anonymous = TestClient(site.app, base_url="http://localhost:8700")      # no terminal: refused, logged
    assert anonymous.get("/login").status_code == 403
    r = site.client("auditor").get("/audit")          # the auditor sees the admin chain too
    assert r.status_code == 200
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", r.text)
    assert "自動処理 (スケジューラ)" in cells and "バックアップの作成" in cells and "ログイン画面の表示" in cells
    assert "scheduler" not in cells and "backup_write" not in cells and "login_page" not in cells


def test_a7_ops_screen_shows_table_names_in_japanese_and_links_to_help_not_docs(site):
    r = site.client("operations").get("/ops")
    assert r.status_code == 200
    shown = re.findall(r'<span class="ops-count" data-table="([a-z_]+)">([^<]+) <b>', r.text)
    assert shown and all(name != label.strip() for name, label in shown)
    assert ("alembic_version", "スキーマの版") in shown and ("comm_log", "通信記録") in shown
    assert "docs/" not in r.text and ".md" not in r.text and 'href="/help#operations"' in r.text
    h = site.client("operations").get("/help")
    assert h.status_code == 200 and 'id="operations"' in h.text and "運用担当者" in h.text


def test_a4_monthly_pdf_and_csv_name_system_actors_and_operations_in_japanese(site):
    m = previous_month()
    at = datetime(m.year, m.month, 5, 10, 0, tzinfo=JST)
    with site.registers.admin_tx() as conn:
        for i, (who, action) in enumerate((("bootstrap", "operator_register"), ("scheduler", "backup_write"),
                                           ("init", "catalogue_change"), ("demo", "backup_write"))):
            site.sec.oplog.append(conn, "admin", actor=Actor(who, None), action=action, now=at + timedelta(minutes=i))
    g = AuditService(site.app.state.config, site.registers).generate(Actor("MANAGER", site.terminal_id), m)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(g.pdf)).pages)
    for label in ("初回設定", "自動処理 (スケジューラ)", "初期設定 (jukinet init)", "デモ環境", "操作者の登録",
                  "バックアップの作成", "提供先・事務一覧の変更"):
        assert label in text, label
    for raw in ("operator_register", "backup_write", "catalogue_change", "scheduler"):
        assert raw not in text, raw
    rows = list(csv.DictReader(io.StringIO(g.csv.decode("utf-8-sig"))))
    sums = [r for r in rows if r["区分"] == "集計" and r["操作者ID"] == "scheduler"]
    assert sums and sums[0]["操作者"] == "自動処理 (スケジューラ)" and sums[0]["内容"] == "バックアップの作成"
    assert sums[0]["対象月"].startswith("令和")


def test_a7_no_screen_names_a_documentation_path():
    templates = SRC / "web" / "templates"
    for p in sorted(templates.rglob("*.html")):
        text = re.sub(r"\{#.*?#\}", "", p.read_text(encoding="utf-8"), flags=re.S)      # not the comments
        assert not re.search(r"docs/|\.md\b|ADR \d{4}", text), p.name


def test_a7_batch_screen_links_to_the_help_for_the_file_layout(site):
    r = site.client("operator_noaffair").get("/provision/batch")        # holds the affair "provision"
    assert r.status_code == 200 and 'href="/help#batch-format"' in r.text and "docs/" not in r.text
    h = site.client("operator_noaffair").get("/help")
    assert 'id="batch-format"' in h.text and "依頼番号" in h.text
