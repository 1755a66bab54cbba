#!/usr/bin/env bash
# What the browser tests (tests/test_web.py) drive: Debian's chromium and chromium-driver, and the
# playwright Python package, which the tests point at the system chromium (Playwright's own browser
# download is never used). Safe to run again: it installs only what is missing and says what it did.
# It ends by starting the browser as the tests do. When that fails it exits 1 under CI=true (where the
# browser tests would fail too); elsewhere it exits 0 and the browser tests skip, naming the missing piece.
#
#   tools/install_browser.sh [PYTHON]     PYTHON defaults to .venv/bin/python, else python3
#
# Elsewhere (no apt-get), install Chromium or Chrome yourself and set GANFORGE_CHROMIUM to its path.
set -u

PY=${1:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
LOG=${TMPDIR:-/tmp}/ganforge-install-browser.log
say() { echo "install_browser: $*"; }
find_chromium() {
  if [ -n "${GANFORGE_CHROMIUM:-}" ] && [ -x "$GANFORGE_CHROMIUM" ]; then echo "$GANFORGE_CHROMIUM"; return; fi
  command -v chromium || command -v chromium-browser || true
}

# --- chromium ---------------------------------------------------------------------------------------
if [ -n "$(find_chromium)" ]; then
  say "chromium already here: $(find_chromium)"
elif ! command -v apt-get >/dev/null 2>&1; then
  say "skipped chromium: no apt-get on this system; install Chromium or Chrome and set GANFORGE_CHROMIUM"
else
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  fi
  if [ "$SUDO" = none ]; then
    say "skipped chromium: installing it needs root (run: sudo apt-get install chromium chromium-driver)"
  else
    say "installing chromium and chromium-driver with apt-get (log: $LOG)"
    # fonts-liberation: without any font, page text would render as empty boxes in screenshots.
    if $SUDO apt-get update -qq >"$LOG" 2>&1 &&
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
         chromium chromium-driver fonts-liberation >>"$LOG" 2>&1; then
      say "installed $(find_chromium) ($("$(find_chromium)" --version 2>/dev/null | head -n 1))"
    else
      say "could not install chromium (see $LOG)"
    fi
  fi
fi

# --- playwright (the Python package only) -------------------------------------------------------------
if ! command -v "$PY" >/dev/null 2>&1 && [ ! -x "$PY" ]; then
  say "skipped playwright: no Python at $PY"
elif "$PY" -c "import playwright" >/dev/null 2>&1; then
  say "playwright already installed for $PY"
elif "$PY" -m pip install -q playwright >>"$LOG" 2>&1; then
  say "installed playwright $("$PY" -c 'from importlib.metadata import version; print(version("playwright"))') for $PY"
else
  say "could not install playwright for $PY (see $LOG)"
fi

# --- the check: playwright starts chromium headless, as the tests do --------------------------------------
CHROMIUM=$(find_chromium)
if [ -z "$CHROMIUM" ]; then
  problem="no chromium found (install it, or set GANFORGE_CHROMIUM to Chromium's or Chrome's path)"
elif ! command -v "$PY" >/dev/null 2>&1 && [ ! -x "$PY" ]; then
  problem="no Python at $PY to run playwright"
elif started=$("$PY" - "$CHROMIUM" 2>&1 <<'EOF'
import sys

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sys.exit("the playwright package is missing")
try:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=sys.argv[1], args=["--no-sandbox", "--headless", "--disable-gpu"])
        print(browser.version)
        browser.close()
except Exception as e:  # one line: the full report is playwright's multi-line box
    sys.exit(f"chromium at {sys.argv[1]} did not start: {str(e).strip().splitlines()[0]}")
EOF
); then
  say "chromium $started starts under playwright: the browser tests will run"
  exit 0
else
  problem=$(printf '%s\n' "$started" | tail -n 1)
fi
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
  true|1) say "error: $problem; under CI=true the browser tests would fail"; exit 1 ;;
  *) say "$problem; the browser tests will skip"; exit 0 ;;
esac
