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
#   - containerd 2.1 (forky's, 2.1.9), private: the CRI tests run their pod
#     under it as well as under 1.6. Installing forky's package would replace
#     bookworm's 1.6, so its deb is downloaded by exact version (apt checks
#     it against the signed archive) and only its `containerd`, `ctr` and
#     `containerd-shim-runc-v2` are unpacked, into
#     /opt/monocore/containerd-2.1.9/bin (the path the tests look in; nothing
#     there is on anyone's PATH; MONOCORE_CONTAINERD2_DIR moves it, for the
#     script and the tests alike). Skipped when all three say 2.1.9.
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
# For tests/scripts.rs only: MONOCORE_CONTAINERD2_STUB=fail makes the
# containerd 2.1 download fail; =hang makes it wait there until a signal
# ends the script (its clean-up on exit is the real one).
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
# python3-venv: the Python package's tests make a venv (scripts/test-python.sh).
for pkg in python3-venv; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
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

# containerd 2.1, private (see the top of this file). The upstream version
# is pinned; the Debian revision is preferred, else another revision of
# 2.1.9 is taken (forky is a moving suite), else this fails loudly.
containerd2_upstream=2.1.9
containerd2_version=2.1.9+ds1-5
containerd2_dir=${MONOCORE_CONTAINERD2_DIR:-/opt/monocore/containerd-$containerd2_upstream}
containerd2_stub=${MONOCORE_CONTAINERD2_STUB:-}
case $containerd2_stub in
"" | fail | hang) ;;
*)
    echo "setup: MONOCORE_CONTAINERD2_STUB=$containerd2_stub: expected fail or hang" >&2
    exit 2
    ;;
esac
containerd2_tools=(containerd ctr containerd-shim-runc-v2)

# Whether every binary in $1 runs and says it is $containerd2_upstream.
containerd2_verified() {
    local tool out
    for tool in "${containerd2_tools[@]}"; do
        case $tool in
        containerd-shim-runc-v2) out=$("$1/$tool" -v 2>/dev/null) || return 1 ;;
        *) out=$("$1/$tool" --version 2>/dev/null) || return 1 ;;
        esac
        grep -Eq "(^|[[:space:]])${containerd2_upstream//./\\.}([+~[:space:]]|$)" <<<"$out" || return 1
    done
}

# Downloads, checks and installs it into place. Its scratch directory (the
# download, the unpacked package) and any half-made install are removed by
# the EXIT trap set below, on every path, and the status is kept.
containerd2_scratch=""
containerd2_staging=""
install_containerd2() {
    local version tool back=$PWD
    containerd2_scratch=$(mktemp -d)
    # apt downloads as its own user, _apt, where it can write.
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$containerd2_scratch"; fi
    cd "$containerd2_scratch"
    version=$containerd2_version
    case $containerd2_stub in
    fail)
        echo "setup: stub download: failing" >&2
        exit 1
        ;;
    hang)
        echo "setup: stub download: waiting for a signal" >&2
        while :; do sleep 1; done
        ;;
    esac
    if ! apt-get download -qq "containerd=$version" 2>/dev/null; then
        $SUDO apt-get update -qq || true
        if ! apt-get download -qq "containerd=$version" 2>/dev/null; then
            version=$(apt-cache madison containerd | awk -v up="$containerd2_upstream" \
                'index($3, up "+") == 1 || index($3, up "~") == 1 || index($3, up "-") == 1 { print $3; exit }')
            if [ -z "$version" ]; then
                echo "setup: containerd $containerd2_upstream is not available from apt (forky carries it; see the top of this script)" >&2
                exit 1
            fi
            echo "setup: containerd $containerd2_version is gone from the archive; using $version"
            apt-get download -qq "containerd=$version"
        fi
    fi
    dpkg-deb -x ./containerd_*.deb unpacked
    mkdir bin
    for tool in "${containerd2_tools[@]}"; do
        install -m 0755 "unpacked/usr/bin/$tool" "bin/$tool"
    done
    if ! containerd2_verified bin; then
        echo "setup: the unpacked containerd $version does not say it is $containerd2_upstream" >&2
        exit 1
    fi
    # Into place with a rename: an interrupted install leaves no half of one
    # where the tests look.
    $SUDO mkdir -p "$(dirname "$containerd2_dir")"
    # What an install killed with SIGKILL (no trap ran) left.
    $SUDO rm -rf "$containerd2_dir".????????
    containerd2_staging=$($SUDO mktemp -d "$containerd2_dir.XXXXXXXX")
    $SUDO cp -a bin "$containerd2_staging/bin"
    $SUDO chmod 0755 "$containerd2_staging"
    $SUDO rm -rf "$containerd2_dir"
    $SUDO mv "$containerd2_staging" "$containerd2_dir"
    containerd2_staging=""
    cd "$back"
    rm -rf "$containerd2_scratch"
    containerd2_scratch=""
    echo "setup: installed containerd $version's binaries in $containerd2_dir/bin"
}

# Keeps the status the script is exiting with: the clean-up's own commands
# must not become it.
cleanup() {
    local status=$?
    if [ -n "$containerd2_scratch" ]; then rm -rf "$containerd2_scratch"; fi
    if [ -n "$containerd2_staging" ]; then $SUDO rm -rf "$containerd2_staging"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if ! containerd2_verified "$containerd2_dir/bin"; then
    echo "setup: unpacking containerd $containerd2_upstream (forky's) into $containerd2_dir"
    install_containerd2
fi

# passt for networking (`net`): forky's, private (see the script's header).
"$here/install-passt.sh"

# The toolchain is pinned by rust-toolchain.toml; make sure its components exist.
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

if [ "$compat_kernel" = 1 ]; then
    "$here/build-compat-kernel.sh"
fi

echo "setup: ok (libkrunfw5 $(dpkg-query -W -f='${Version}' libkrunfw5), busybox-static $(dpkg-query -W -f='${Version}' busybox-static), containerd $(dpkg-query -W -f='${Version}' containerd), containerd $containerd2_upstream in $containerd2_dir, passt in ${MONOCORE_PASST_DIR:-/opt/monocore/passt}, docker-registry $(dpkg-query -W -f='${Version}' docker-registry)$([ "$compat_kernel" = 1 ] && echo ', compat kernel'))"
