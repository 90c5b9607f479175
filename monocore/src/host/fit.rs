//! The facts of this host a valid config must fit before its VM starts:
//! `/dev/kvm`, the memory and vCPUs the host can give, and whether the
//! kernel it boots has networking (TSI).
//!
//! These are not validation rules: the same config may run on one host and
//! not on another. They are checked before the VMM starts
//! ([`MicroVm::check_support`](crate::vm::MicroVm::check_support), which
//! `spawn` and `start` run), so that none of them surfaces as an `EINVAL`
//! from `krun_start_enter`. Each error is located like a validation error.

use monocore_rules::Field;

use super::{HostLimits, kernel::GuestKernel};
use crate::{
    config::MicroVmConfig,
    error::{ConfigErrorKind as Kind, InvalidMicroVmConfigError, MonocoreError, MonocoreResult},
};

fn cannot_run(field: Field, kind: Kind) -> MonocoreError {
    MonocoreError::HostCannotRun(InvalidMicroVmConfigError {
        at: field.whole(),
        kind,
    })
}

/// Checks `config` against what this host can give (`limits`) and the
/// kernel it boots.
pub(crate) fn check(
    config: &MicroVmConfig,
    kernel: &GuestKernel,
    limits: &HostLimits,
) -> MonocoreResult<()> {
    if let Err(problem) = &limits.kvm {
        return Err(MonocoreError::HostCannotBoot {
            problem: problem.clone(),
        });
    }
    if let Some(host_mib) = limits.mem_total_mib
        && u64::from(config.ram_mib) > host_mib
    {
        return Err(cannot_run(
            Field::Ram,
            Kind::RamExceedsHost {
                ram_mib: config.ram_mib,
                host_mib,
            },
        ));
    }
    if let Ok(Some(max)) = limits.kvm
        && u32::from(config.num_vcpus) > max
    {
        return Err(cannot_run(
            Field::Vcpus,
            Kind::VcpusExceedKvm {
                vcpus: config.num_vcpus,
                max,
            },
        ));
    }
    check_kernel(config, kernel)
}

/// Networking (TSI) needs libkrunfw's kernel.
pub(crate) fn check_kernel(config: &MicroVmConfig, kernel: &GuestKernel) -> MonocoreResult<()> {
    if !config.local_only && matches!(kernel, GuestKernel::Elf { .. }) {
        return Err(cannot_run(
            Field::LocalOnly,
            Kind::NetworkingNeedsTsi {
                kernel: kernel.to_string(),
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostProblem;

    const ROOMY: HostLimits = HostLimits {
        kvm: Ok(Some(1024)),
        mem_total_mib: Some(4096),
    };

    fn elf() -> GuestKernel {
        GuestKernel::Elf {
            path: "/k/vmlinux".into(),
            cmdline: String::new(),
        }
    }

    #[test]
    fn ram_and_vcpus_must_fit_the_host() {
        let mut config = MicroVmConfig::new("/r", 4096);
        config.num_vcpus = 128;
        check(&config, &GuestKernel::Libkrunfw, &ROOMY).unwrap();
        config.ram_mib = 4097;
        let err = check(&config, &GuestKernel::Libkrunfw, &ROOMY).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this host cannot run this microVM: ram: ram of 4097 MiB is more than this host has: 4096 MiB of memory in total"
        );
        config.ram_mib = 1;
        let small_kvm = HostLimits {
            kvm: Ok(Some(64)),
            ..ROOMY
        };
        let err = check(&config, &GuestKernel::Libkrunfw, &small_kvm).unwrap_err();
        assert!(
            matches!(&err, MonocoreError::HostCannotRun(e) if e.at == Field::Vcpus.whole()),
            "{err}"
        );
        // Unknown figures are not guessed at.
        let unknown = HostLimits {
            kvm: Ok(None),
            mem_total_mib: None,
        };
        config.ram_mib = u32::MAX;
        check(&config, &GuestKernel::Libkrunfw, &unknown).unwrap();
    }

    #[test]
    fn no_kvm_is_a_host_problem_and_networking_needs_tsi() {
        let mut config = MicroVmConfig::new("/r", 1);
        let no_kvm = HostLimits {
            kvm: Err(HostProblem::KvmMissing),
            mem_total_mib: None,
        };
        assert!(matches!(
            check(&config, &GuestKernel::Libkrunfw, &no_kvm),
            Err(MonocoreError::HostCannotBoot {
                problem: HostProblem::KvmMissing
            })
        ));
        check(&config, &elf(), &ROOMY).unwrap();
        config.local_only = false;
        check(&config, &GuestKernel::Libkrunfw, &ROOMY).unwrap();
        let err = check(&config, &elf(), &ROOMY).unwrap_err();
        assert!(
            matches!(&err, MonocoreError::HostCannotRun(e) if e.at == Field::LocalOnly.whole()),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("which has no TSI; leave `local_only` true (no TSI)"),
            "{err}"
        );
    }
}
