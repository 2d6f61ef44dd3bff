"""Browser test of the review page (docs/review.md), run by scripts/test-review.sh.

Opens the page `podcast-assemble demo` wrote in the system's Chromium (Playwright drives it;
no browser is downloaded) and checks what a producer relies on:

- the page loads with no console errors and no failed requests, and its <audio> element
  loads the episode by the page's relative path (its duration matches the report's);
- there is one marker per edit of the report;
- clicking a marker seeks the audio to that join minus the pre-roll (clamped at 0),
  within 0.05 s, for the first, a middle and the last marker;
- the transcript strikes through exactly the words the report does not have;
- the data embedded in the page is what the report says (edits, duration).

Writes a screenshot of the page (docs/review.png with --screenshot).

Usage: python scripts/test_review.py DEMO_OUT_DIR [--screenshot PATH] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

TOLERANCE_S = 0.05
PREROLL_S = 3.0


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)
    print(f"ok: {msg}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path, help="the demo's output folder (input/out)")
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    page_path = (args.out_dir / "review.html").resolve()
    report = json.loads((args.out_dir / "report.json").read_text())
    edits = report["edits"]
    content_start_s = next(
        p["start_ms"] for p in report["placements"] if p["asset"] == "content"
    ) / 1000
    check(page_path.is_file(), f"{page_path} exists")

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        # A media element cancels its pending range request when it seeks (net::ERR_ABORTED):
        # that is the seek working, not a failure; anything else is.
        page.on(
            "requestfailed",
            lambda r: None
            if r.failure == "net::ERR_ABORTED" and r.resource_type == "media"
            else errors.append(f"request failed: {r.url} ({r.failure})"),
        )
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())

        # The audio element resolves the episode by its relative path.
        try:
            page.wait_for_function(
                "document.getElementById('episode').readyState >= 1", timeout=15_000
            )
        except PlaywrightTimeout:
            src = page.get_attribute("#episode", "src")
            fail(f"the <audio> element did not load the episode from src={src!r} ({errors})")
        duration = page.evaluate("document.getElementById('episode').duration")
        expected_duration = report["output"]["duration_ms"] / 1000
        check(
            abs(duration - expected_duration) < 0.1,
            f"audio duration {duration:.3f} s = report {expected_duration:.3f} s",
        )
        check(
            all(u.startswith("file://") for u in requests),
            f"no network requests ({len(requests)} file:// loads)",
        )

        data = page.evaluate(
            "JSON.parse(document.getElementById('review-data').textContent)"
        )
        check(len(data["edits"]) == len(edits), f"{len(edits)} edits embedded")
        for d, e in zip(data["edits"], edits):
            if d["reason"] != e["reason"] or d["kind"] != e["kind"]:
                fail(f"embedded edit {d} does not match the report's {e}")

        markers = page.locator("#markers .marker")
        check(markers.count() == len(edits), f"one marker per edit ({markers.count()})")

        picks = sorted({0, len(edits) // 2, len(edits) - 1}) if edits else []
        for i in picks:
            marker = markers.nth(i)
            # From the report: the join on the content's output timeline, moved to where the
            # content starts on the episode, minus the 3 s pre-roll.
            join_s = content_start_s + edits[i]["output_start_ms"] / 1000
            expected = max(0.0, join_s - PREROLL_S)
            # The time the audio element is sent to, read when the seek starts (playback
            # moves it on at once afterwards).
            page.evaluate(
                """() => {
                    const a = document.getElementById('episode');
                    window.__seekTo = null;
                    a.addEventListener('seeking', () => { window.__seekTo = a.currentTime; },
                                       {once: true});
                }"""
            )
            marker.click()
            page.wait_for_function("window.__seekTo !== null", timeout=10_000)
            got = page.evaluate("window.__seekTo")
            check(
                abs(got - expected) <= TOLERANCE_S,
                f"marker {i} ({data['edits'][i]['reason']}) seeks to {got:.3f} s, "
                f"expected {expected:.3f} s",
            )
            page.evaluate("document.getElementById('episode').pause()")

        # Struck-through words are the words the report's re-timed transcript lost.
        struck = page.locator("#transcript del").all_text_contents()
        kept = page.locator("#transcript .w").all_text_contents()
        check(len(kept) == len(report["words"]), f"{len(kept)} kept words = report words")
        check(
            [w["text"] for w in report["words"]] == kept,
            "kept words read as the report's words",
        )
        check(len(struck) == sum(1 for w in data["words"] if w["removed_by"]),
              f"{len(struck)} struck words = removed words")
        check(len(struck) > 0, "the demo removes words")

        if args.screenshot:
            # At rest: playhead at 0, no marker hovered, focused or highlighted.
            page.mouse.move(0, 0)
            page.evaluate(
                """() => new Promise((done) => {
                    const a = document.getElementById('episode');
                    document.activeElement.blur();
                    a.pause();
                    a.addEventListener('seeked', done, {once: true});
                    a.currentTime = 0;
                })"""
            )
            page.wait_for_function(
                "document.querySelectorAll('.marker.current').length === 0", timeout=5_000
            )
            check(page.locator("#status").text_content() == "", "no status message")
            page.screenshot(path=str(args.screenshot), full_page=False)
            print(f"screenshot: {args.screenshot}")

        check(not errors, f"no console errors ({errors})")
        browser.close()


if __name__ == "__main__":
    main()
