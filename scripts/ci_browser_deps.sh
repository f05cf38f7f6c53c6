#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the browser test of `edge-albert serve`'s page
# (tests/test_serve_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver with
# selenium; nothing is downloaded at test time), and npm for the MediaPipe page's package
# (web/mediapipe: `make web-deps` runs npm ci there; tests/test_mediapipe_web.py serves it).
#
# Idempotent and quiet: exits at once when all three are installed.
# Needs root (or passwordless sudo). Usage: bash scripts/ci_browser_deps.sh
set -euo pipefail

die() { echo "ci_browser_deps.sh: $*" >&2; exit 1; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && command -v npm >/dev/null; then
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is required (this script targets Debian 12 bookworm)"
. "$(dirname "$0")/as_root.sh" "chromium"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
packages=(chromium chromium-driver)
command -v npm >/dev/null || packages+=(npm)  # Debian's npm (with nodejs) only where none is installed
$SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || die "chromium or chromedriver missing after install"
command -v npm >/dev/null || die "npm missing after install"
