#!/usr/bin/env bash
# Installs the passt that monocore's networking (`net`) runs: Debian forky's
# (2026-10), in a private directory with forky's own dynamic loader and libc,
# so that nothing of the base system changes.
#
# Why forky's: bookworm's passt (2023-03) answers a guest's connection
# attempt that the host refuses with a TCP RST that lacks the ACK bit, which
# a guest in SYN-SENT must ignore (RFC 9293, 3.10.7.3): a denied connection
# then hangs until the guest gives up, instead of failing at once. Forky's
# answers RST+ACK. It needs glibc 2.38 (for the C23 strtol family only);
# bookworm has 2.36, and installing forky's libc6 would replace the
# system's. So forky's passt and libc6 packages are unpacked here, and
# monocore runs passt through this directory's loader:
#   $dir/ld-linux-x86-64.so.2 --library-path $dir $dir/passt ...
#
# Usage: scripts/install-passt.sh [--check]
#   --check   only verify the install: exit 0 if it is there and runs
#
# Output: ${MONOCORE_PASST_DIR:-/opt/monocore/passt}: passt,
# ld-linux-x86-64.so.2, libc.so.6, version. Idempotent; an install is made
# in a scratch directory and renamed into place, so an interrupted one never
# leaves half of one where monocore looks. Needs root or sudo, and Debian
# forky in apt's sources (scripts/setup.sh adds it, pinned low).
set -euo pipefail

passt_version=0.0~git20261002.cba3570-1
libc_version=2.43-7
dir=${MONOCORE_PASST_DIR:-/opt/monocore/passt}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# Whether $1 holds a passt that runs and says it is $passt_version.
verified() {
    local out
    [ -x "$1/passt" ] && [ -x "$1/ld-linux-x86-64.so.2" ] || return 1
    out=$("$1/ld-linux-x86-64.so.2" --library-path "$1" "$1/passt" --version 2>/dev/null) || return 1
    grep -qF "passt $passt_version" <<<"$out"
}

if [ "${1:-}" = --check ]; then
    verified "$dir"
    exit
fi
if verified "$dir"; then
    echo "install-passt: up to date: $dir (passt $passt_version)"
    exit 0
fi

scratch=""
staging=""
cleanup() {
    local status=$?
    if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
    if [ -n "$staging" ]; then $SUDO rm -rf "$staging"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

scratch=$(mktemp -d)
# apt downloads as its own user, _apt, where it can write.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$scratch"; fi
cd "$scratch"
download() {
    if ! apt-get download -qq "$1=$2" 2>/dev/null; then
        $SUDO apt-get update -qq || true
        apt-get download -qq "$1=$2"
    fi
}
download passt "$passt_version"
download libc6 "$libc_version"
dpkg-deb -x ./passt_*.deb unpacked
dpkg-deb -x ./libc6_*.deb unpacked
mkdir out
install -m 0755 unpacked/usr/bin/passt out/passt
install -m 0755 unpacked/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 out/ld-linux-x86-64.so.2
install -m 0644 unpacked/usr/lib/x86_64-linux-gnu/libc.so.6 out/libc.so.6
echo "passt $passt_version, libc6 $libc_version (Debian forky)" >out/version
if ! verified out; then
    echo "install-passt: the unpacked passt does not run or is not $passt_version" >&2
    exit 1
fi
$SUDO mkdir -p "$(dirname "$dir")"
# What an install killed with SIGKILL (no trap ran) left.
$SUDO rm -rf "$dir".????????
staging=$($SUDO mktemp -d "$dir.XXXXXXXX")
$SUDO cp -a out/. "$staging/"
$SUDO chmod 0755 "$staging"
$SUDO rm -rf "$dir"
$SUDO mv "$staging" "$dir"
staging=""
echo "install-passt: installed passt $passt_version in $dir"
