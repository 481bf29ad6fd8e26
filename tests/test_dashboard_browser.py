"""reports/index.html in a real headless browser (Debian's chromium over the DevTools pipe):
no console errors, sorting and filtering change the rows, the figures are visible."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

from fitting.report.browser import Browser, find_chromium
from fitting.report.dashboard import TABLE_COLUMNS, build_html, write_dashboard
from fitting.report.validate import validate
from tests._validation_data import committed_inputs

ROWS_JS = ("Array.from(document.querySelectorAll('#profiles tbody tr')).filter(r => !r.hidden)"
           ".map(r => [r.getAttribute('data-fw'), r.cells[1].textContent, r.cells[{i}].getAttribute('data-v'),"
           " r.textContent.toLowerCase()])")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    prof, params = committed_inputs(tmp)
    doc = validate(prof, params).to_dict(max_error=10)
    path = write_dashboard(prof, params, tmp / "reports", validation=doc)
    return path, doc


def test_page_is_self_contained(dashboard):
    """No server and no external assets: nothing is fetched from anywhere."""
    path, doc = dashboard
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"""<(?:script|img|link|iframe)[^>]*\s(?:src|href)\s*=""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:|//)", html, re.I)
    assert "@import" not in html
    assert html.count('<svg class="fig"') == 4  # accuracy, error by batch, predicted vs measured, calibration
    assert html.count("<tr class=\"validated\"") == len(doc["rows"])
    assert html.count("<tr class=\"excluded\"") == len(doc["excluded"])
    assert build_html(doc, {}) .startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def page(dashboard):
    if find_chromium() is None:
        msg = "chromium is not installed (apt-get install chromium): the browser test needs it"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; CI must install it so that this test runs")
        pytest.skip(msg)
    path, doc = dashboard
    with Browser.launch(width=1400, height=1000, timeout=90) as browser:
        yield browser.open(path.resolve().as_uri()), path, doc


def _col(key):
    return [k for k, _, _ in TABLE_COLUMNS].index(key)


def _rows(page, key="measured"):
    return page.evaluate(ROWS_JS.replace("{i}", str(_col(key))))


def _set_hash(page, h):
    """Change the URL hash and wait until the page's hashchange handler has re-applied it."""
    if page.evaluate("window.location.hash.replace(/^#/, '')") == h:
        return
    n = int(page.evaluate("document.body.dataset.applied"))
    page.evaluate(f"window.location.hash = {h!r}")
    page.wait_for(f"Number(document.body.dataset.applied) > {n}")


def test_loads_without_console_errors(page):
    p, path, doc = page
    assert p.evaluate("document.body.dataset.ready") == "1", "the table script ran to the end"
    assert p.errors() == []
    total = len(doc["rows"]) + len(doc["excluded"])
    assert p.evaluate("document.querySelectorAll('#profiles tbody tr').length") == total
    assert p.evaluate("document.getElementById('row-count').textContent") == f"{total} of {total} profiles shown"


def test_sorting_changes_the_rows(page):
    p, path, doc = page
    before = [r[1] for r in _rows(p)]
    _set_hash(p, "sort=measured&dir=desc")
    rows = _rows(p)
    vals = [float(r[2]) for r in rows if r[2] not in (None, "")]
    assert vals == sorted(vals, reverse=True) and len(vals) >= 2
    assert [r[1] for r in rows] != before
    assert all(r[2] in (None, "") for r in rows[len(vals):]), "rows without a value sort last"
    # clicking the header again flips the direction
    p.evaluate("document.querySelector('#profiles th[data-key=measured]').click()")
    asc = [float(r[2]) for r in _rows(p) if r[2] not in (None, "")]
    assert asc == sorted(asc)
    assert p.evaluate("window.location.hash") == "#sort=measured&dir=asc"
    _set_hash(p, "sort=profile&dir=asc")
    ids = [r[1] for r in _rows(p)]
    assert ids == sorted(ids, key=str.lower)
    assert p.errors() == []


def test_filtering_changes_the_rows(page):
    p, path, doc = page
    _set_hash(p, "")
    total = len(_rows(p))
    fw = doc["rows"][0]["framework"]
    model = doc["rows"][0]["model_id"]
    _set_hash(p, f"fw={fw}")
    rows = _rows(p)
    expected = sum(r["framework"] == fw for r in doc["rows"]) + sum(x["framework"] == fw for x in doc["excluded"])
    assert len(rows) == expected < total
    assert {r[0] for r in rows} == {fw}
    _set_hash(p, f"fw={fw}&q={model.lower()}")
    rows = _rows(p)
    assert 1 <= len(rows) < expected
    assert all(model.lower() in r[3] for r in rows)
    assert sum(r["framework"] == fw and r["model_id"] == model for r in doc["rows"]) <= len(rows)
    assert p.evaluate("document.getElementById('row-count').textContent") == f"{len(rows)} of {total} profiles shown"
    # typing into the filter box does the same and writes the hash
    p.evaluate("(() => { const q = document.getElementById('q'); q.value = 'zzz-no-such-profile';"
               " q.dispatchEvent(new Event('input')); })()")
    assert _rows(p) == []
    assert "q=zzz-no-such-profile" in p.evaluate("window.location.hash")
    _set_hash(p, "")
    assert p.errors() == []


def test_figures_are_visible(page, tmp_path):
    p, path, doc = page
    figs = p.evaluate("""Array.from(document.querySelectorAll('svg.fig')).map(s => {
        s.scrollIntoView(); const b = s.getBoundingClientRect(); const st = getComputedStyle(s);
        return {w: b.width, h: b.height, display: st.display, vis: st.visibility,
                marks: s.querySelectorAll('.mark').length, title: s.querySelector('title').textContent}; })""")
    assert len(figs) == 4
    for f in figs:
        assert f["w"] > 300 and f["h"] > 250, f
        assert f["display"] != "none" and f["vis"] == "visible", f
        assert f["marks"] > 0, f"{f['title']}: nothing drawn"
    p.evaluate("window.scrollTo(0, 0)")
    shot = p.screenshot(tmp_path / "dashboard.png", full_page=False)
    data = Path(shot).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height >= 900 and len(data) > 50_000
    assert p.errors() == []
