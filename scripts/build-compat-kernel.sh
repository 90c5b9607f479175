#!/usr/bin/env bash
# Builds monocore's compat guest kernel: Linux 6.12 from Debian's
# linux-source-6.12 package, configured by kernel/compat.config on top of
# allnoconfig and patched by kernel/compat.patch, for hosts whose KVM is
# kvm_pvm (paravirtualized KVM), where libkrunfw's stock kernel cannot boot.
# See kernel/README.md for what each option and patch hunk is for.
#
# Usage: scripts/build-compat-kernel.sh [--check] [--force]
#   (no flag)  build unless a verified build is already installed
#   --check    only verify the installed build: exit 0 if it is current and
#              intact, 1 otherwise (nothing is built or installed)
#   --force    rebuild even if a verified build is installed
#
# Exit status: 0 when a verified kernel is installed at the end, else the
# status of the step that failed (130, 143 or 129 after SIGINT, SIGTERM or
# SIGHUP). The clean-up on exit never changes it.
#
# For the tests of this script and of setup.sh (tests/scripts.rs) only:
# MONOCORE_KERNEL_BUILD_STUB=ok replaces the download and the build with a
# few bytes of fake kernel (its stamp names a recipe of its own, so a stub
# never passes --check as the real kernel); =fail fails where the build
# would run; =hang waits there until a signal ends it.
#
# Output: $MONOCORE_CACHE_DIR/kernel/compat (else
# $XDG_CACHE_HOME/monocore/kernel/compat, else ~/.cache/monocore/kernel/compat):
#   vmlinux     the ELF kernel monocore boots with krun_set_kernel
#   System.map  to map a guest rip from `dmesg | grep kvm-pvm` to a symbol
#   config      the full .config
#   stamp       what was built from what: the recipe hash (fragment, patch,
#               source version, recipe revision) and vmlinux's sha256
#
# Idempotent: a build is reused when its stamp names the current recipe and
# vmlinux still has the recorded sha256. A new build happens in a private
# scratch directory and replaces the old one with a rename, so an interrupted
# build never leaves a half-written kernel where monocore looks for one.
# Takes 4-13 minutes on 2 cores (nice'd); needs root or sudo only to install
# missing build tools with apt.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
fragment=$here/kernel/compat.config
patchfile=$here/kernel/compat.patch

# The source package and the version the patch and fragment were made for.
# If the archive no longer has it, the newest 6.12 is used and the patch
# must still apply (it fails loudly otherwise).
source_pkg=linux-source-6.12
source_version=6.12.117-1~deb12u1
# Bump when the steps below change in a way that changes the kernel.
recipe_revision=1
# The stamp format the monocore runtime reads (monocore::kernel).
stamp_format=1

mode=build
for arg in "$@"; do
    case $arg in
    --check) mode=check ;;
    --force) mode=force ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "build-compat-kernel: unknown argument: $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

cache_root=${MONOCORE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/monocore}
kernel_dir=$cache_root/kernel
dest=$kernel_dir/compat

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "build-compat-kernel: $*" >&2; }

stub=${MONOCORE_KERNEL_BUILD_STUB:-}
case $stub in
"" | ok | fail | hang) ;;
*)
    echo "build-compat-kernel: MONOCORE_KERNEL_BUILD_STUB=$stub: expected ok, fail or hang" >&2
    exit 2
    ;;
esac

# The recipe hash: everything that decides what gets built.
recipe_hash() {
    local version=$1
    {
        printf 'revision=%s\nsource=%s %s\n' "$recipe_revision" "$source_pkg" "$version"
        if [ -n "$stub" ]; then printf 'stub\n'; fi
        cat "$fragment" "$patchfile"
    } | sha256sum | cut -d' ' -f1
}

stamp_value() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# Verifies the installed build against the recipe for any source version
# (the stamp names the version it was built from). Prints why not, if not.
verify_installed() {
    local stamp=$dest/stamp
    if [ ! -f "$stamp" ] || [ ! -f "$dest/vmlinux" ]; then
        echo "no compat kernel installed at $dest"
        return 1
    fi
    local version recorded want sum
    version=$(stamp_value "$stamp" source | cut -d' ' -f2)
    recorded=$(stamp_value "$stamp" recipe_sha256)
    want=$(recipe_hash "$version")
    if [ "$recorded" != "$want" ]; then
        echo "the installed compat kernel was built from another recipe (stamp $recorded, now $want)"
        return 1
    fi
    if [ "$(stamp_value "$stamp" format)" != "$stamp_format" ]; then
        echo "the installed compat kernel's stamp has another format"
        return 1
    fi
    sum=$(sha256sum "$dest/vmlinux" | cut -d' ' -f1)
    if [ "$sum" != "$(stamp_value "$stamp" vmlinux_sha256)" ]; then
        echo "the installed vmlinux does not match its stamp's sha256 (corrupted or replaced)"
        return 1
    fi
    return 0
}

if why=$(verify_installed); then
    if [ "$mode" != force ]; then
        log "up to date: $dest ($(stamp_value "$dest/stamp" release), verified sha256)"
        exit 0
    fi
elif [ "$mode" = check ]; then
    log "$why"
    exit 1
else
    log "$why: building"
fi
[ "$mode" = check ] && exit 0

# --- build tools ---------------------------------------------------------
tools=(make gcc bc bison flex libelf-dev patch xz-utils dpkg-dev)
missing=()
for pkg in "${tools[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "$stub" ]; then
    log "installing build tools: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
fi

# --- a private scratch directory, removed on every exit path -------------
mkdir -p "$kernel_dir"
chmod 700 "$cache_root" "$kernel_dir" 2>/dev/null || true
# One build at a time: the lock is held until this script exits (the kernel
# drops it even after kill -9). Whatever scratch, staging or old directory
# is found while holding it was left by a build that died: remove it.
exec 9>"$kernel_dir/.build.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
    if why=$(verify_installed) && [ "$mode" != force ]; then
        log "up to date: $dest (built meanwhile, verified sha256)"
        exit 0
    fi
fi
rm -rf "$kernel_dir"/.build-* "$kernel_dir"/.staging-* "$kernel_dir"/.old-*
scratch=$(mktemp -d "$kernel_dir/.build-XXXXXXXX")
staging=""
old=""
# Keeps the status the script is exiting with: the clean-up's own commands
# (a test that is false when there is no staging directory) must not become
# the script's exit status.
cleanup() {
    local status=$?
    rm -rf "$scratch"
    if [ -n "$staging" ]; then rm -rf "$staging"; fi
    if [ -n "$old" ]; then rm -rf "$old"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Both builds leave vmlinux, System.map and .config in the current
# directory and set $version (the source package version) and $release.

# The real build: download, patch, configure, build.
real_build() {
    # --- the source ----------------------------------------------------------
    version=$source_version
    if ! apt-get download -qq "$source_pkg=$version" 2>/dev/null; then
        $SUDO apt-get update -qq || true
        if ! apt-get download -qq "$source_pkg=$version" 2>/dev/null; then
            version=$(apt-cache policy "$source_pkg" | sed -n 's/^ *Candidate: //p')
            if [ -z "$version" ] || [ "$version" = "(none)" ]; then
                log "Debian's $source_pkg is not available from apt (bookworm-security or newer is needed)"
                exit 1
            fi
            log "$source_pkg $source_version is gone from the archive; using $version"
            apt-get download -qq "$source_pkg=$version"
        fi
    fi
    log "unpacking $source_pkg $version"
    dpkg-deb --fsys-tarfile ./*.deb | tar -x --wildcards './usr/src/linux-source-*.tar.xz'
    tar -xJf ./usr/src/linux-source-*.tar.xz
    rm -rf ./usr ./*.deb
    cd linux-source-*

    # --- patch and configure -------------------------------------------------
    patch -p1 --forward --batch --quiet <"$patchfile"
    make -s KCONFIG_ALLCONFIG="$fragment" allnoconfig
    # Every line of the fragment must have survived: a dependency that drops an
    # option would otherwise yield a kernel that silently lacks it.
    dropped=$(
        while IFS= read -r line; do
            case $line in
            CONFIG_*=*)
                grep -qxF -- "$line" .config || echo "  wanted $line, got: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo 'absent')"
                ;;
            "# CONFIG_"*" is not set")
                opt=${line#\# }
                opt=${opt%% *}
                if grep -qE "^$opt=" .config; then echo "  wanted $line, got: $(grep -E "^$opt=" .config)"; fi
                ;;
            esac
        done <"$fragment"
    )
    if [ -n "$dropped" ]; then
        log "kernel/compat.config did not survive allnoconfig:"
        echo "$dropped" >&2
        exit 1
    fi

    # --- build ---------------------------------------------------------------
    jobs=$(nproc)
    log "building vmlinux with make -j$jobs (nice 10); 4-13 minutes on 2 cores"
    start=$(date +%s)
    KBUILD_BUILD_USER=monocore KBUILD_BUILD_HOST=compat \
        nice -n 10 make -s -j"$jobs" LOCALVERSION=-monocore-compat vmlinux
    release=$(make -s LOCALVERSION=-monocore-compat kernelrelease)
    log "built $release in $(($(date +%s) - start)) s"
}

# The tests' stand-in for real_build (see MONOCORE_KERNEL_BUILD_STUB above).
stub_build() {
    version=$source_version
    case $stub in
    fail)
        log "stub build: failing"
        exit 1
        ;;
    hang)
        log "stub build: waiting for a signal"
        while :; do sleep 1; done
        ;;
    esac
    printf 'stub kernel\n' >vmlinux
    printf 'ffffffff81000000 T _stext\n' >System.map
    printf 'CONFIG_MONOCORE_COMPAT=y\n' >.config
    release=stub
    log "stub build: made a fake vmlinux"
}

cd "$scratch"
if [ -n "$stub" ]; then stub_build; else real_build; fi

# --- install: staging, then one rename ------------------------------------
staging=$(mktemp -d "$kernel_dir/.staging-XXXXXXXX")
cp vmlinux System.map "$staging/"
cp .config "$staging/config"
sum=$(sha256sum "$staging/vmlinux" | cut -d' ' -f1)
cat >"$staging/stamp" <<EOF
# monocore compat kernel, written by scripts/build-compat-kernel.sh
format=$stamp_format
release=$release
source=$source_pkg $version
recipe_sha256=$(recipe_hash "$version")
vmlinux_sha256=$sum
compiler=$(gcc --version | head -n 1)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
chmod 755 "$staging"
if [ -e "$dest" ]; then
    old=$(mktemp -d "$kernel_dir/.old-XXXXXXXX")
    mv "$dest" "$old/"
    mv "$staging" "$dest"
    rm -rf "$old"
    old=""
else
    mv "$staging" "$dest"
fi
staging=""
log "installed $dest/vmlinux ($release, sha256 $sum)"
