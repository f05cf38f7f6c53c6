#!/usr/bin/env bash
# JDK and JUnit 4 for the Android demo's pure-Java core tests (tests/test_android_java.py).
#
# Debian 12 (bookworm) packages: default-jdk-headless (OpenJDK 17: javac + java) and junit4
# (/usr/share/java/junit4.jar 4.13.2, with hamcrest 2.2 as a dependency). No Android SDK, Gradle
# or Maven is involved: the test compiles the core with javac and runs JUnitCore directly.
#
# Idempotent and quiet: exits at once when javac, java and the jars are already there; apt output
# is shown only when an install fails. Needs root (or passwordless sudo).
# Usage: bash scripts/ci_java_deps.sh
set -euo pipefail

die() { echo "ci_java_deps.sh: $*" >&2; exit 1; }

have_all() {
    command -v javac >/dev/null && command -v java >/dev/null \
        && [ -f /usr/share/java/junit4.jar ] \
        && { [ -f /usr/share/java/hamcrest-core.jar ] || [ -f /usr/share/java/hamcrest.jar ]; }
}

if have_all; then
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is required (this script targets Debian 12 bookworm)"
. "$(dirname "$0")/as_root.sh" "the JDK and JUnit"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends default-jdk-headless junit4; } >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get could not install default-jdk-headless junit4"
fi
have_all || die "installed default-jdk-headless and junit4, but javac, java or the JUnit/Hamcrest jars are still missing"
