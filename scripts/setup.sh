#!/usr/bin/env bash
# Installs what monocore needs on a Debian host (bookworm or newer):
#   - libkrunfw5: the guest kernel that libkrun loads at run time. Debian ships
#     it only in forky/sid, so forky is added with a low pin priority (100):
#     nothing else is taken from it unless asked for by name.
#   - busybox-static: a static shell and coreutils for test and default rootfs.
#   - containerd (1.6 in bookworm, with runc): the containerd shim's tests
#     start a private containerd of their own and drive it with `ctr`, and
#     through its CRI plugin as kubelet does (runc is their reference
#     runtime handler).
#   - for those CRI tests: protobuf-compiler (`protoc`, which the k8s-cri
#     crate's build script runs to generate the CRI client) and iproute2
#     (`ip`, which their CNI plugin runs inside the pod's network namespace).
#   - for the image tests and benchmark: docker-registry (distribution 2.8, a
#     real registry the tests start on 127.0.0.1), apache2-utils (htpasswd,
#     for the basic-auth registry), skopeo and umoci (the benchmark's
#     baseline: skopeo copy + umoci unpack).
#   - the pinned Rust toolchain's components (rustfmt, clippy).
#   - on hosts whose KVM is kvm_pvm (paravirtualized KVM, where libkrunfw's
#     kernel cannot boot), or with --compat-kernel: monocore's compat guest
#     kernel, built from Debian's linux-source-6.12 by
#     scripts/build-compat-kernel.sh (4-13 minutes the first time; reused
#     afterwards when its stamp verifies). Nothing is built on hardware-KVM
#     hosts.
# Safe to run again: every step checks before it changes anything.
#
# Usage: scripts/setup.sh [--compat-kernel]
set -euo pipefail

compat_kernel=0
case "${1:-}" in
"") ;;
--compat-kernel) compat_kernel=1 ;;
*)
    echo "setup: unknown argument: $1 (usage: scripts/setup.sh [--compat-kernel])" >&2
    exit 2
    ;;
esac
if [ -e /sys/module/kvm_pvm ]; then compat_kernel=1; fi
here=$(cd "$(dirname "$0")" && pwd)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_update=0
if ! apt-cache policy libkrunfw5 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    if ! grep -rqs 'forky' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "setup: adding Debian forky (pinned low, for libkrunfw5 only)"
        $SUDO tee /etc/apt/sources.list.d/monocore-forky.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        $SUDO tee /etc/apt/preferences.d/monocore-forky >/dev/null <<'PIN'
Package: *
Pin: release n=forky
Pin-Priority: 100
PIN
    fi
    need_update=1
fi

missing=()
dpkg -s libkrunfw5 >/dev/null 2>&1 || missing+=(libkrunfw5)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
dpkg -s containerd >/dev/null 2>&1 || missing+=(containerd)
for pkg in protobuf-compiler iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
for pkg in docker-registry apache2-utils skopeo umoci; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$need_update" = 1 ] || [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
        $SUDO apt-get update -qq
    fi
    echo "setup: installing ${missing[*]}"
    # libkrunfw5 comes from forky; its only dependency is libc6, which bookworm has.
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

# The toolchain is pinned by rust-toolchain.toml; make sure its components exist.
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

if [ "$compat_kernel" = 1 ]; then
    "$here/build-compat-kernel.sh"
fi

echo "setup: ok (libkrunfw5 $(dpkg-query -W -f='${Version}' libkrunfw5), busybox-static $(dpkg-query -W -f='${Version}' busybox-static), containerd $(dpkg-query -W -f='${Version}' containerd), docker-registry $(dpkg-query -W -f='${Version}' docker-registry)$([ "$compat_kernel" = 1 ] && echo ', compat kernel'))"
