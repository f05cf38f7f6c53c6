# Sourced by the ci_*_deps.sh scripts after they define die():  . "$(dirname "$0")/as_root.sh" WHAT
# Sets SUDO to "" when running as root (no sudo needed), to "sudo -n" for a user with passwordless
# sudo, and otherwise stops with one line saying how to run the script.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null \
        || die "installing $1 needs root: run 'sudo bash $0'"
    SUDO="sudo -n"
fi
