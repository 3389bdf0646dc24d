#!/usr/bin/env bash
# Headless Chromium for the report's browser test: installs Debian's `chromium` package
# with apt-get if no Chromium is on the machine (as root, or through sudo), then prints
# the binary's path as the last line of stdout. Idempotent: a second call only prints.
#
#   bash scripts/chromium.sh          # the path, e.g. /usr/bin/chromium
#
# RFM_CHROMIUM  use this binary instead (must be executable); nothing is installed.
set -euo pipefail

info() { echo "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

if [ -n "${RFM_CHROMIUM:-}" ]; then
    [ -x "$RFM_CHROMIUM" ] || die "RFM_CHROMIUM=$RFM_CHROMIUM is not an executable file"
    echo "$RFM_CHROMIUM"
    exit 0
fi

# Debian's package installs /usr/bin/chromium; other distributions name it differently.
find_chromium() {
    local name
    for name in chromium chromium-browser google-chrome-stable google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if path="$(find_chromium)"; then
    echo "$path"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "no Chromium found and no apt-get to install it: install Chromium, or set RFM_CHROMIUM"
if [ "$(id -u)" = 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    die "no Chromium found; installing it needs root: run 'sudo apt-get install -y chromium'"
fi

info "Installing Debian's chromium package (apt-get)"
# apt-get may hold its lock for a parallel install (another test worker): wait for it.
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 \
    || die "apt-get update failed"
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >&2 || die "apt-get install chromium failed"

path="$(find_chromium)" || die "apt-get installed chromium, but no chromium binary is on PATH"
echo "$path"
