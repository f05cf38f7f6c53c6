#!/usr/bin/env bash
# System packages CI needs on a fresh Debian 12 (bookworm) x86_64 machine.
#
# qemu-user comes from bookworm-backports (qemu 10): Debian 12's own qemu-user 7.2 crashes
# inside ai-edge-litert >= 2.2, so the ARM emulation tests (scripts/arm_emulation.py) need
# the backported one. Since qemu 9.1 the Debian package `qemu-user` ships static binaries
# (it replaced qemu-user-static) and has no library dependencies; qemu-user-binfmt is left
# out on purpose (it registers binfmt_misc handlers host-wide, which a container cannot do
# and the tests do not need).
#
# Idempotent and quiet: when a new enough qemu-aarch64 is already installed it only checks
# that apt-get and dpkg-deb exist (they build the arm64 sysroot) and exits.
# Needs root (or passwordless sudo). Usage: bash scripts/ci_system_deps.sh
set -euo pipefail

QEMU_MIN_MAJOR=8
BACKPORTS_FILE=/etc/apt/sources.list.d/edge-albert-bookworm-backports.sources
MIRROR="${EDGE_ALBERT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "ci_system_deps.sh: $*" >&2; exit 1; }

qemu_major() {
    local v
    v="$(qemu-aarch64 --version 2>/dev/null | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' | head -n1)"
    echo "${v:-0}"
}

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "apt-get and dpkg-deb are required (this script targets Debian 12 bookworm)"

if command -v qemu-aarch64 >/dev/null && [ "$(qemu_major)" -ge "$QEMU_MIN_MAJOR" ]; then
    exit 0
fi

. "$(dirname "$0")/as_root.sh" "qemu-user"

. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] \
    || die "expected Debian 12 bookworm, found '${PRETTY_NAME:-unknown}'; install qemu-user >= ${QEMU_MIN_MAJOR} (qemu-aarch64) by other means"

# Add bookworm-backports unless some apt source already lists it.
if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee "$BACKPORTS_FILE" >/dev/null <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

# Quiet on success; on failure show apt's output.
APT_LOG="$(mktemp)"
trap 'rm -f "$APT_LOG"' EXIT
apt_quiet() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$APT_LOG" 2>&1 \
        || { cat "$APT_LOG" >&2; die "apt-get $* failed"; }
}
apt_quiet update -qq
apt_quiet install -y -qq --no-install-recommends -t bookworm-backports qemu-user

command -v qemu-aarch64 >/dev/null || die "qemu-user was installed but qemu-aarch64 is not on PATH"
[ "$(qemu_major)" -ge "$QEMU_MIN_MAJOR" ] \
    || die "qemu-aarch64 is $(qemu-aarch64 --version | head -n1); need >= ${QEMU_MIN_MAJOR} from bookworm-backports"
echo "ci_system_deps.sh: $(qemu-aarch64 --version | head -n1)"
