"""Run the vendored axe-core in a page and keep what WCAG 2.1 A/AA calls serious.

axe-core (MPL-2.0) sits in web/static/vendor/axe-core/; no page links to it. The test
adds it to the page under test as a same-origin script, so the strict CSP stays on
(script-src 'self') while it runs.
"""

from __future__ import annotations

from typing import Any

AXE_URL = "/static/vendor/axe-core/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}

RUN = """async (tags) => {
    const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.failureSummary),
    }));
}"""


def violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical WCAG 2.1 A/AA violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_URL)
    found: list[dict[str, Any]] = page.evaluate(RUN, WCAG_TAGS)
    return [v for v in found if v["impact"] in BLOCKING]


def describe(by_page: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for name, found in by_page.items():
        for violation in found:
            lines.append(f"{name}: {violation['id']} ({violation['impact']}) {violation['help']}")
            lines += [f"    {node}" for node in violation["nodes"]]
    return "\n".join(lines)
