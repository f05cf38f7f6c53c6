#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the browser test of `edge-albert serve`'s page
# (tests/test_serve_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver with
# selenium; nothing is downloaded at test time).
#
# Idempotent and quiet: exits at once when both are installed.
# Needs root (or passwordless sudo). Usage: bash scripts/ci_browser_deps.sh
set -euo pipefail

die() { echo "ci_browser_deps.sh: $*" >&2; exit 1; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is required (this script targets Debian 12 bookworm)"
. "$(dirname "$0")/as_root.sh" "chromium"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || die "chromium or chromedriver missing after install"
