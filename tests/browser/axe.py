"""axe-core in the browser tests (issue 19, ADR 0043): the accessibility engine from npm (``axe-core``,
MPL-2.0), vendored in ``tests/browser/vendor/`` with its licence and version (refreshed by
``scripts/refresh_design_tokens.sh``). Never served by the application: injected by the test through
WebDriver (which the page's Content-Security-Policy does not govern), run on the whole document against
WCAG 2.0/2.1/2.2 A and AA.
"""

from __future__ import annotations

from pathlib import Path

VENDOR = Path(__file__).parent / "vendor"
AXE_JS = VENDOR / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = ("serious", "critical")

_source: str | None = None


def _axe_source() -> str:
    global _source
    if _source is None:
        _source = AXE_JS.read_text(encoding="utf-8")
    return _source


def run(b) -> list[dict]:
    """axe's violations on the page now open in ``b`` (a harness Browser): [{id, impact, help, nodes}]."""
    d = b.driver
    if not d.execute_script("return !!window.axe"):
        d.execute_script(_axe_source())
    d.set_script_timeout(60)
    res = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));", TAGS)
    return res


def blocking(b, screen: str) -> list[str]:
    """The serious or critical violations of the open page, as readable lines naming the screen."""
    return [f"{screen}: {v['impact']} {v['id']} — {v['help']} @ {', '.join(v['nodes'])}"
            for v in run(b) if v["impact"] in BLOCKING]
