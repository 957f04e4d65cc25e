"""The built site in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

    .venv/bin/python -m pytest -q tests/test_leaderboard_browser.py

From a fresh smoke run: submit twice (one with hostile strings), build, open
index.html from file:// and check rows, curves, sorting, filtering, escaping.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import madbench
from madbench.leaderboard import bundle

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian chromium + chromium-driver (scripts/setup.sh installs them as root)")]


@pytest.fixture(scope="module")
def site(smoke_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    subs = root / "subs"
    madbench("submit", smoke_run, "--out", subs / "plain.json", "--submitter", "alice", check=True)
    data = json.loads((subs / "plain.json").read_text())
    data["submitter"] = data["notes"] = HOSTILE
    data["config"]["model"]["name"] = data["summary"]["model"] = HOSTILE
    data["run"]["name"] = data["config"]["name"] = "hostile"
    data["content_hash"] = bundle.content_hash(data)
    (subs / "hostile.json").write_text(json.dumps(data))
    madbench("leaderboard", "build", "--submissions", subs, "--out", root / "site", check=True)
    return root / "site"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def visible_rows(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#board tbody tr')).filter(r => !r.hidden)"
        ".map(r => Array.from(r.cells).map(c => c.getAttribute('data-sort') ?? c.textContent.trim()))")


def column(driver, name):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#board thead th')).findIndex(th => th.dataset.score === arguments[0])", name)


def test_front_page_tracks_first_then_open_rows(browser, site):
    browser.get((site / "index.html").as_uri())
    rows = visible_rows(browser)
    groups = len(json.loads(next((site / "data").glob("*.json")).read_text())["scores"]["groups"])
    assert len(rows) == 2 * groups
    assert browser.find_element("id", "shown").text == f"Showing {2 * groups} of {2 * groups} rows"
    order = browser.execute_script("return Array.from(document.querySelectorAll('main section')).map(s => s.id || s.className)")
    assert order.index("tracks") < order.index("board-section")  # what works first, the open submissions after
    answer = browser.find_element("css selector", "ul.what-works").text
    assert "tiny-fs: no submissions yet" in answer  # (this site holds only open submissions)
    browser.find_element("link text", "curves").click()
    assert browser.find_element("tag name", "h1").text == "Metric vs generation"


def test_curves_are_small_multiples_with_readable_legends_and_numbers(browser, site):
    browser.get((site / "curves.html").as_uri())
    cards = browser.execute_script(
        "return Array.from(document.querySelectorAll('.curve-card')).map(c => ({model: c.dataset.model, regime: c.dataset.regime,"
        " legend: Array.from(c.querySelectorAll('ul.legend-list li')).map(li => li.textContent),"
        " swatches: Array.from(c.querySelectorAll('ul.legend-list rect')).map(r => r.getAttribute('fill')),"
        " strokes: Array.from(c.querySelectorAll('svg.chart polyline')).map(p => p.getAttribute('stroke')),"
        " charts: c.querySelectorAll('svg.chart').length}))")
    assert cards and len({(c["model"], c["regime"]) for c in cards}) == len(cards)  # one card per model and regime
    for c in cards:
        assert c["legend"] and not any("…" in label for label in c["legend"])  # labels whole, never cut
        assert len(set(c["swatches"])) == len(c["swatches"])  # no colour twice within one card
        assert set(c["strokes"]) <= set(c["swatches"]) and c["charts"] == 2
    summary = browser.find_element("css selector", ".curve-card details.numbers summary")
    table = browser.find_element("css selector", ".curve-card details.numbers table")
    assert not table.is_displayed()
    summary.click()
    assert table.is_displayed()
    gens = browser.execute_script("return Array.from(arguments[0].querySelectorAll('tbody tr')).map(r => r.cells[0].textContent)", table)
    data = json.loads(next((site / "data").glob("*.json")).read_text())
    assert gens == [str(g["generation"]) for g in data["chains"][0]["generations"]]


def test_header_click_sorts(browser, site):
    browser.get((site / "index.html").as_uri())
    col = column(browser, "perplexity_last")
    header = browser.find_elements("css selector", "#board thead th")[col]
    header.click()
    values = [float(r[col]) for r in visible_rows(browser)]
    assert values == sorted(values) and len(set(values)) > 1
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    values = [float(r[col]) for r in visible_rows(browser)]
    assert values == sorted(values, reverse=True)
    first = browser.find_elements("css selector", "#board thead th")[0]
    first.click()
    names = [r[0] for r in visible_rows(browser)]
    assert names == sorted(names) and names[0] == "hostile"


def test_filter_hides_rows(browser, site):
    browser.get((site / "index.html").as_uri())
    total = len(visible_rows(browser))
    box = browser.find_element("id", "filter")
    box.send_keys("fresh_data")
    rows = browser.execute_script("return Array.from(document.querySelectorAll('#board tbody tr')).filter(r => !r.hidden).map(r => r.textContent)")
    assert 0 < len(rows) < total and all("fresh_data" in r for r in rows)
    box.clear()
    box.send_keys("no row has this text")
    assert visible_rows(browser) == []
    box.clear()
    box.send_keys(" ")  # clear() fires no input event; any edit re-filters
    assert len(visible_rows(browser)) == total
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", "select[data-facet=model]")).select_by_visible_text("tiny")
    assert 0 < len(visible_rows(browser)) < total


def test_hostile_strings_are_text(browser, site):
    for page in [site / "index.html", site / "curves.html", *(site / "t").glob("*.html"), *(site / "s").glob("*.html")]:
        browser.get(page.as_uri())
        assert browser.execute_script("return typeof window.__pwned") == "undefined"
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert browser.execute_script("return document.querySelectorAll('script:not([src])').length") == 0
        body = browser.find_element("tag name", "body").text
        if "hostile" in body:
            assert "<script>window.__pwned=1</script>" in body


@pytest.fixture(scope="module")
def track_site(tmp_path_factory) -> Path:
    """The repository's own submissions: the tiny-fs track submission beside the open ones."""
    from conftest import ROOT

    out = tmp_path_factory.mktemp("track-site") / "site"
    madbench("leaderboard", "build", "--submissions", ROOT / "leaderboard" / "submissions", "--out", out, check=True)
    return out


def test_a_tracks_tiered_table_and_its_page(browser, track_site):
    from madbench.leaderboard.tracks_view import track_rows

    browser.get((track_site / "index.html").as_uri())
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#track-tiny-fs tbody tr')).filter(r => r.offsetParent !== null)"
        ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
    head = browser.execute_script("return Array.from(document.querySelectorAll('#track-tiny-fs thead th')).map(c => c.innerText)")
    subs = [json.loads(p.read_text()) for p in (track_site / "data").glob("*.json")]
    expected = track_rows(subs, "tiny-fs")
    assert head[:4] == ["Tier", "Mitigation", "Submission", "perplexity (ranked) ↓"] and "own target" in head
    assert [r[:2] for r in shown] == [[str(r["tier"]), r["mitigation"]] for r in expected]
    assert [r[3].split() for r in shown] == [[f"{r['effect_pct']:+.1f}%", f"[{r['ci95_pct'][0]:+.1f},", f"{r['ci95_pct'][1]:+.1f}]"]
                                             for r in expected]  # the effect with its interval under it
    assert [r[-1].startswith("over") for r in shown] == [not r["within_budget"] for r in expected]
    answer = browser.find_element("css selector", "ul.what-works").text
    assert all(r["mitigation"] in answer for r in expected if r["tier"] == 1 and r["within_budget"])
    smol = browser.execute_script("return Array.from(document.querySelectorAll('#track-smollm2-fs tbody tr'))"
                                  ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
    smol_head = browser.execute_script("return Array.from(document.querySelectorAll('#track-smollm2-fs thead th')).map(c => c.innerText)")
    expected_smol = track_rows(subs, "smollm2-fs")  # the shipped SmolLM2 submission: the baseline and all 8 built-in mitigations, 6 seeds (two parts merged)
    assert expected_smol and [r[:2] for r in smol] == [[str(r["tier"]), r["mitigation"]] for r in expected_smol]
    assert any(h.startswith("madbench_cloze/acc") for h in smol_head)  # the task score is on the track's panel
    browser.find_element("css selector", "#track-tiny-fs h3 a").click()
    assert browser.find_element("tag name", "h1").text == "Track tiny-fs"
    cards = browser.find_elements("css selector", ".curve-card")
    assert len(cards) == 1 and cards[0].get_attribute("data-model") == "tiny"
    legend = [li.text for li in cards[0].find_elements("css selector", "ul.legend-list li")]
    assert legend[0] == "none (baseline)" and sorted(legend[1:]) == sorted(r["mitigation"] for r in expected)
    browser.find_element("css selector", "#track-tiny-fs tbody tr a").click()
    assert "track-tiny-fs" in browser.find_element("tag name", "h1").text


def test_a_protocol_page_from_the_front_page(browser, track_site):
    browser.get((track_site / "index.html").as_uri())
    browser.find_element("link text", "gerstgrasser2024").click()
    assert browser.find_element("tag name", "h1").text == "Protocol gerstgrasser2024"
    text = browser.find_element("tag name", "main").text
    assert "Claim. Replacing the data" in text and "madbench run --preset gerstgrasser2024" in text
    fixed = [td.text for td in browser.find_elements("css selector", "main table.plain tbody tr td:first-child")]
    assert "loop.regimes" in fixed and "train.method" in fixed
    # the shipped reproductions, both faithful: tiny (gerstgrasser2024-tiny-*.json, 8 seeds: replace +25.4% [16.1, 34.8]
    # vs accumulate +9.1% [7.4, 10.8]) and SmolLM2 (gerstgrasser2024-smollm2-135m-*.json, 3 seeds: +4.1% [3.3, 4.9]
    # vs -9.1% [-10.7, -7.5]); one verdict per model
    verdicts = browser.find_elements("css selector", "ul.verdicts li")
    assert len(verdicts) == 2 and all(v.get_attribute("data-verdict") == "reproduced" for v in verdicts), [v.text for v in verdicts]
    assert all("fully_synthetic/replace" in v.text and "synthetic_augmentation/accumulate" in v.text for v in verdicts)
    assert {"tiny", "smollm2-135m"} == {m for v in verdicts for m in ("tiny", "smollm2-135m") if f"on {m}" in v.text}
    rows = browser.find_elements("css selector", "table.protocol-subs tbody tr")
    assert len(rows) == 2 and all("follows the protocol" in r.text for r in rows)
    assert sorted(m for r in rows for m in ("tiny", "smollm2-135m") if m in r.text) == ["smollm2-135m", "tiny"]
