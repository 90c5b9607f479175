//! A CNI network that keeps a pod offline, for containerd's CRI plugin: a
//! plugin of our own (a shell script) that puts an interface named `eth0`
//! with the address 127.0.0.2/8 into the pod's network namespace, and
//! answers as the `loopback` plugin too (containerd adds a loopback network
//! to every pod). Nothing is routed out of the namespace: the interface is
//! a `dummy`, or, where the kernel has no `dummy` driver, a `veth` pair
//! whose both ends stay in the namespace.
//!
//! The CRI plugin wants a result naming `eth0` with an IP
//! (`failed to find network info for sandbox` otherwise); the pod's IP in
//! `PodSandboxStatus` is this address. Each call is appended to a log, so a
//! test can check that every `ADD` got its `DEL`.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
};

/// The address the plugin gives the pod's `eth0`.
pub const POD_IP: &str = "127.0.0.2";

/// The network's name in the conflist.
pub const NETWORK: &str = "monocore-offline";

/// The plugin's `type` (and file name).
const PLUGIN: &str = "monocore-offline";

const SCRIPT: &str = r#"#!/bin/sh
# A CNI plugin for monocore's CRI tests. As `monocore-offline`: an `eth0`
# with 127.0.0.2/8 in the pod's network namespace (a dummy, or a veth pair
# with both ends inside); as `loopback`: `lo` up. Nothing leaves the
# namespace. Each call is logged to ../calls.log.
set -u
config=$(cat)
version=$(printf '%s\n' "$config" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$version" ] || version=1.0.0
kind=$(basename "$0")
log="$(dirname "$0")/../calls.log"
echo "${CNI_COMMAND:-} $kind ${CNI_CONTAINERID:-} ${CNI_IFNAME:-} ${CNI_NETNS:-}" >>"$log"

fail() {
    printf '{"cniVersion":"%s","code":999,"msg":"%s: %s"}\n' "$version" "$kind" "$1"
    exit 1
}
in_ns() { nsenter --net="$CNI_NETNS" "$@"; }

case "${CNI_COMMAND:-}" in
VERSION)
    printf '{"cniVersion":"%s","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}\n' "$version"
    ;;
ADD)
    if [ "$kind" = loopback ]; then
        in_ns ip link set lo up || fail "cannot set lo up in $CNI_NETNS"
        name=lo address=127.0.0.1/8
    else
        in_ns ip link add "$CNI_IFNAME" type dummy 2>/dev/null ||
            in_ns ip link add "$CNI_IFNAME" type veth peer name "$CNI_IFNAME-peer" ||
            fail "cannot add $CNI_IFNAME in $CNI_NETNS"
        in_ns ip address add 127.0.0.2/8 dev "$CNI_IFNAME" || fail "cannot address $CNI_IFNAME"
        in_ns ip link set "$CNI_IFNAME" up || fail "cannot set $CNI_IFNAME up"
        name=$CNI_IFNAME address=127.0.0.2/8
    fi
    printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"%s","interface":0}],"dns":{}}\n' \
        "$version" "$name" "$CNI_NETNS" "$address"
    ;;
DEL)
    # The namespace may be gone already: nothing is left in it then.
    if [ "$kind" != loopback ] && [ -n "${CNI_NETNS:-}" ] && [ -e "$CNI_NETNS" ]; then
        if in_ns ip link show "$CNI_IFNAME" >/dev/null 2>&1; then
            in_ns ip link del "$CNI_IFNAME" || fail "cannot delete $CNI_IFNAME"
        fi
    fi
    ;;
CHECK)
    if [ "$kind" != loopback ]; then
        in_ns ip -o address show dev "$CNI_IFNAME" | grep -q ' 127\.0\.0\.2/8 ' ||
            fail "$CNI_IFNAME has no 127.0.0.2/8 in $CNI_NETNS"
    fi
    ;;
*)
    fail "unknown CNI_COMMAND ${CNI_COMMAND:-}"
    ;;
esac
"#;

/// The CNI directories of a private containerd, under its temporary
/// directory.
#[derive(Debug, Clone)]
pub struct Cni {
    dir: PathBuf,
}

impl Cni {
    /// Writes the plugin (`bin/monocore-offline`, `bin/loopback`) and the
    /// conflist (`conf/10-monocore-offline.conflist`) under `dir`.
    pub fn install(dir: &Path) -> Self {
        let cni = Self {
            dir: dir.to_owned(),
        };
        fs::create_dir_all(cni.bin_dir()).unwrap();
        fs::create_dir_all(cni.conf_dir()).unwrap();
        let plugin = cni.bin_dir().join(PLUGIN);
        fs::write(&plugin, SCRIPT).unwrap();
        fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
        symlink(PLUGIN, cni.bin_dir().join("loopback")).unwrap();
        fs::write(
            cni.conf_dir().join("10-monocore-offline.conflist"),
            format!(
                r#"{{"cniVersion":"1.0.0","name":"{NETWORK}","plugins":[{{"type":"{PLUGIN}"}}]}}"#
            ),
        )
        .unwrap();
        cni
    }

    /// Where the plugins are (the CRI plugin's `cni.bin_dir`).
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// Where the conflist is (the CRI plugin's `cni.conf_dir`).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }

    /// The calls so far, one per line: `<COMMAND> <plugin> <container id>
    /// <ifname> <netns>`.
    pub fn calls(&self) -> Vec<CniCall> {
        fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let mut f = line.split(' ');
                let mut next = || f.next().unwrap_or_default().to_owned();
                CniCall {
                    command: next(),
                    plugin: next(),
                    container_id: next(),
                    ifname: next(),
                    netns: next(),
                }
            })
            .collect()
    }

    /// Asserts that every network `ADD` for a pod got its `DEL`.
    pub fn assert_every_add_deleted(&self) {
        let calls = self.calls();
        for add in calls.iter().filter(|c| c.command == "ADD") {
            assert!(
                calls.iter().any(|c| c.command == "DEL"
                    && c.plugin == add.plugin
                    && c.container_id == add.container_id),
                "CNI ADD without a DEL: {add:?}; calls: {calls:#?}"
            );
        }
    }
}

/// One call of the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniCall {
    /// `ADD`, `DEL`, `CHECK` or `VERSION`.
    pub command: String,
    /// `monocore-offline` or `loopback`.
    pub plugin: String,
    /// The pod sandbox's id.
    pub container_id: String,
    /// The interface name asked for (`eth0` for the pod's network).
    pub ifname: String,
    /// The path of the pod's network namespace.
    pub netns: String,
}
