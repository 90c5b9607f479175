use std::net::Ipv4Addr;
use std::path::PathBuf;

use monocore_rules::egress::EgressRuleErrorKind;

/// Why the guest's network could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// No passt: not in `MONOCORE_PASST`, not installed by
    /// `scripts/install-passt.sh`, not on `PATH`.
    #[error(
        "networking (`net`) needs passt, which is not installed: run scripts/install-passt.sh (Debian forky's passt, private, in /opt/monocore/passt), or name a passt binary in MONOCORE_PASST"
    )]
    PasstNotFound,
    /// `MONOCORE_PASST` names something that is not an executable file.
    #[error("MONOCORE_PASST names {0}, which is not an executable file")]
    PasstNotExecutable(PathBuf),
    /// An allow-list name has no IPv4 address on the host.
    #[error("allow-list entry {name:?}: the host resolves it to no IPv4 address")]
    Unresolved {
        /// The name.
        name: String,
        /// The resolver's error, if it failed outright.
        #[source]
        source: Option<std::io::Error>,
    },
    /// An allow-list name resolves to an address an entry may not name.
    #[error("allow-list entry {name:?} resolves to {addr}: {kind}")]
    ResolvedAddress {
        /// The name.
        name: String,
        /// The address.
        addr: Ipv4Addr,
        /// The rule it breaks.
        kind: EgressRuleErrorKind,
    },
    /// A published host port could not be bound on 127.0.0.1.
    #[error("port mapping {host}:{guest}: cannot listen on 127.0.0.1:{host}")]
    Publish {
        /// The host port.
        host: u16,
        /// The guest port.
        guest: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The network namespace passt runs in could not be set up.
    #[error("setting up passt's network namespace: {step}")]
    Namespace {
        /// The step that failed.
        step: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// passt could not be started.
    #[error("starting passt ({path})")]
    PasstSpawn {
        /// The binary.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// passt exited or did not answer before the VM started.
    #[error("passt did not start: {0}")]
    PasstFailed(String),
}
