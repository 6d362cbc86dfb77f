"""The role guides and the transparency charts in Chromium at phone size (390 px), in both
languages: the guides fit the screen and pass axe; every word of a chart is at least 12 px as
drawn, no label runs into another label, a bar or a value, and a star count has its plural."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.builders import DOWNTOWN, Account, offer_to, place_driver, request_trip
from tests.web.conftest import PHONE, SCREENSHOTS, Visit, Web

# Every box of a chart a person reads or sees: each element holding text of its own, and each
# bar. A text's size is its font size as drawn: inside an SVG scaled to the screen, the CSS
# size times the SVG's scale (a 13 px label in a 480-unit SVG 330 px wide is 9 px on screen).
CHART_BOXES = """() => [...document.querySelectorAll('figure.chart')].map((chart) => {
  const boxes = [];
  for (const e of chart.querySelectorAll('*')) {
    const own = [...e.childNodes]
      .some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const isBar = e.tagName.toLowerCase() === 'rect';
    if (!own && !isBar) continue;
    if (e.tagName.toLowerCase() === 'desc' || e.tagName.toLowerCase() === 'title') continue;
    const r = e.getBoundingClientRect();
    let scale = 1;
    const svg = e.closest('svg');
    if (svg && svg.getScreenCTM()) { scale = Math.abs(svg.getScreenCTM().d); }
    boxes.push({
      text: own ? e.textContent.trim() : '',
      bar: isBar,
      caption: e.tagName.toLowerCase() === 'figcaption',
      size: parseFloat(getComputedStyle(e).fontSize) * scale,
      left: r.left, right: r.right, top: r.top, bottom: r.bottom,
    });
  }
  return {id: chart.id, boxes};
})"""


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two boxes share more than a hair (half a pixel) of the screen."""
    across: float = min(a["right"], b["right"]) - max(a["left"], b["left"])
    down: float = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return across > 0.5 and down > 0.5


def chart_faults(charts: list[dict[str, Any]]) -> list[str]:
    faults = []
    for chart in charts:
        boxes = [b for b in chart["boxes"] if b["right"] > b["left"]]
        for box in boxes:
            if box["text"] and box["size"] < 12:
                faults.append(f"{chart['id']}: {box['text']!r} is {box['size']:.1f} px")
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                if (a["text"] or b["text"]) and overlaps(a, b):
                    faults.append(
                        f"{chart['id']}: {a['text'] or 'a bar'!r} overlaps {b['text'] or 'a bar'!r}"
                    )
    return faults


def test_the_chart_check_finds_small_and_overlapping_words() -> None:
    label = {
        "text": "1 star",
        "bar": False,
        "size": 12.0,
        "left": 0,
        "right": 60,
        "top": 0,
        "bottom": 16,
    }
    bar = {"text": "", "bar": True, "size": 16.0, "left": 0, "right": 200, "top": 20, "bottom": 36}
    assert chart_faults([{"id": "c", "boxes": [label, bar]}]) == []
    small = {**label, "size": 9.1}
    assert len(chart_faults([{"id": "c", "boxes": [small, bar]}])) == 1
    over = {**bar, "top": 10}
    assert len(chart_faults([{"id": "c", "boxes": [label, over]}])) == 1


async def _rated_trip(
    web: Web, rider: Account, driver: Account, stars: int, tags: list[str]
) -> None:
    trip = await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, DOWNTOWN)
    offer_id = await offer_to(web.app, driver)
    accepted = await web.http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.is_success, accepted.text
    for step in ("arrived", "start", "complete"):
        response = await web.http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    rating = await web.http.post(
        f"/v1/trips/{trip['id']}/rating",
        headers=rider.headers,
        json={"stars": stars, "tags": tags},
    )
    assert rating.status_code == 201, rating.text


PLURALS = {
    "en": (["1 star", "2 stars"], "1 stars"),
    "fr": (["1 étoile", "2 étoiles"], "1 étoiles"),
}
# Above the charts: two ratings, one of them counted (the other is for traffic alone).
TOTALS = {
    "en": "2 ratings in all; 1 counts in drivers' scores.",
    "fr": "2 évaluations en tout ; 1 compte dans la note des personnes au volant.",
}


async def test_the_transparency_charts_read_at_phone_size(
    web: Web, visit: Callable[..., Any]
) -> None:
    rider = web.accounts["rider"]
    # One star for traffic alone (so it does not count: the exclusions' chart has a row), and two.
    await _rated_trip(web, rider, web.accounts["amira"], 1, ["traffic"])
    await _rated_trip(web, rider, web.accounts["amira"], 2, ["wrong_route"])
    for language in ("en", "fr"):
        v: Visit = await visit(language=language, viewport=PHONE)
        await v.goto("/transparency")
        charts = await v.page.evaluate(CHART_BOXES)
        assert {c["id"] for c in charts} == {"chart-stars", "chart-excluded", "chart-outcomes"}
        stars = next(c for c in charts if c["id"] == "chart-stars")
        labels = [b["text"] for b in stars["boxes"] if b["text"] and not b["caption"]]
        wanted, wrong = PLURALS[language]
        for text in wanted:
            assert text in labels, f"{language}: {labels}"
        assert wrong not in labels
        totals = await v.page.locator("#ratings-total").text_content()
        # split() reads the no-break spaces as spaces (the typography test checks those).
        assert totals is not None and " ".join(totals.split()) == TOTALS[language]
        excluded = next(c for c in charts if c["id"] == "chart-excluded")
        assert any(b["bar"] for b in excluded["boxes"]), "the exclusions' chart has no bar"
        faults = chart_faults(charts)
        assert not faults, f"{language}:\n" + "\n".join(faults)
        width = await v.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{language}: {width} px wide"
        await v.page.locator("#chart-stars").scroll_into_view_if_needed()
        await v.page.locator(".charts").screenshot(
            path=str(SCREENSHOTS / f"transparency-charts-phone-{language}.png")
        )


async def test_the_guides_at_phone_size_in_both_languages(
    web: Web, visit: Callable[..., Any]
) -> None:
    shots = {
        ("/guide", "en"): "guide-index-en",
        ("/guide/rider", "en"): "guide-rider-en",
        ("/guide/rider", "fr"): "guide-rider-fr",
        ("/guide/operator", "fr"): "guide-operator-fr",
        ("/guide", "fr"): "guide-index-fr",
    }
    for language in ("en", "fr"):
        v: Visit = await visit(language=language, viewport=PHONE)
        for path in (
            "/guide",
            "/guide/rider",
            "/guide/driver",
            "/guide/committee",
            "/guide/reviewer",
            "/guide/operator",
        ):
            await v.goto(path)
            width = await v.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} ({language}): {width} px wide"
            if (path, language) in shots:
                await v.shot(shots[(path, language)], full_page=False)
        await v.axe(f"/guide/operator ({language})")
        # From any page, the footer leads to the guides.
        await v.goto("/agreement")
        await v.page.locator("footer a[href='/guide/driver']").click()
        await v.page.wait_for_load_state("load")
        assert v.page.url.endswith("/guide/driver")
        assert await v.page.locator("#guide h2").count() >= 4
