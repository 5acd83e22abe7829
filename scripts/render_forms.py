"""Render each 事務3 form (disclosure form with history, provision history, correction result letter,
the 利用停止請求 receipt and decision letter, the 通報書 to the municipality)
from synthetic persons in a throwaway installation, and write docs/forms/<form>.png with pdftoppm
(poppler-utils) — first page, 100 dpi. The PDFs are written next to them only with ``--pdf``.

Usage: python scripts/render_forms.py [--out docs/forms] [--pdf]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "forms")
    ap.add_argument("--pdf", action="store_true")
    a = ap.parse_args()
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm (poppler-utils) is needed")
    from disclosure.conftest import KATSURAGI, OP, seed
    from jukinet_testing import make_installation

    from jukinet.bootstrap import bootstrap
    from jukinet.disclosure.service import DisclosureService, IntakeCommand
    from jukinet.provision.service import ProvideCommand
    from provision import people as P

    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="render-forms-") as tmp:
        inst = bootstrap(make_installation(Path(tmp) / "data", "sqlite"))
        inst.ensure_default_catalogue()
        config, registers, prov = inst.config, inst.registers, inst.provision
        config.provision.national_fallback = False
        seed(registers)
        svc = DisclosureService(config, registers)
        for req, aff in (("KOAN", "KOAN-UNTEN"), ("SOMU", "SOMU-KENZEI"), ("SOMU", "SOMU-KENZEI-F")):
            prov.provide(ProvideCommand(requester_code=req, affair_code=aff, juminhyo_code=KATSURAGI), P.OPERATOR, "T1")
        svc.intake(IntakeCommand("juki", "R8-0001", "葛\U000E0102城𠮷子", "S36.2.3", "2", "名張市丸之内79番地",
                                 "history"), OP, "T0001")
        forms = {"disclosure": svc.disclosure_form("juki", "R8-0001", OP, "T0001", with_history=True),
                 "provisions": svc.provisions_form("juki", "R8-0001", OP, "T0001")}
        cid = svc.open_correction("juki", "R8-0001", "correct", ["address"], "番地の誤り", OP, "T0001")
        svc.step("juki", cid, "investigating", OP, "T0001")
        svc.step("juki", cid, "reported", OP, "T0001", municipality_code="242080")
        svc.step("juki", cid, "closed", OP, "T0001")
        forms["correction-result"] = svc.correction_letter("juki", cid, OP, "T0001")
        from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS
        with registers.engine("juki").connect() as conn:
            rid = conn.execute(MUNICIPAL_REPORTS["juki"].select()).first().report_id
        forms["municipal-report"] = svc.report_document("juki", rid, OP, "T0001")
        sid = svc.open_suspension("juki", "R8-0001", "stop_provision", "unlawful_provision",
                                  "法令の根拠なく他の機関に提供されたと思われる", OP, "T0001", copy_sheets=3, copy_size="A3")
        forms["suspension-receipt"] = svc.suspension_receipt("juki", sid, OP, "T0001")
        svc.step_suspension("juki", sid, "investigating", OP, "T0001")
        svc.decide_suspension("juki", sid, "not_suspend", "no_violation", OP, "T0001")
        forms["suspension-result"] = svc.suspension_letter("juki", sid, OP, "T0001")
        inst.close()
        for name, issued in forms.items():
            pdf = Path(tmp) / f"{name}.pdf"
            pdf.write_bytes(issued.pdf)
            subprocess.run(["pdftoppm", "-r", "100", "-png", "-singlefile", "-f", "1", "-l", "1", str(pdf),
                            str(a.out / name)], check=True)
            if a.pdf:
                shutil.copy(pdf, a.out / f"{name}.pdf")
            print(f"{a.out / name}.png  ({issued.serial}, {issued.pages} page(s))")


if __name__ == "__main__":
    main()
