#!/usr/bin/env bash
# Browser test of the review page (docs/review.md): runs `podcast-assemble demo` into a scratch
# folder, then scripts/test_review.py opens its review.html in Debian's Chromium through
# Playwright (no browser download: the system executable is launched) and checks it loads
# without console errors, shows one marker per edit, and that clicking a marker seeks the
# episode to the join minus the pre-roll.
# CHROMIUM: the browser (default /usr/bin/chromium; CI installs Debian's `chromium`).
# REVIEW_SCREENSHOT: where the page's screenshot goes (default target/review.png; the README's
# is docs/review.png: `REVIEW_SCREENSHOT=docs/review.png bash scripts/test-review.sh`).
# VENV overrides the venv folder (default target/venv-review, reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "error: no Chromium at $chromium (apt-get install chromium, or set CHROMIUM)" >&2
  exit 1
fi
venv=${VENV:-target/venv-review}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$(cd "$venv" && pwd)/bin/python"
# Playwright drives the system Chromium; it never downloads one (and `pip install` does not).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
"$py" -m pip install -q "playwright==1.65.3"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== podcast-assemble demo $out"
cargo run -q -p assembly-cli -- demo "$out" | tee "$out/demo.log"
grep -q "^review page: $out/input/out/review.html" "$out/demo.log" \
  || { echo "error: the demo did not print its review page" >&2; exit 1; }

shot=${REVIEW_SCREENSHOT:-target/review.png}
echo "== browser test ($chromium)"
"$py" scripts/test_review.py "$out/input/out" --chromium "$chromium" --screenshot "$shot"
echo "== review page test passed"
