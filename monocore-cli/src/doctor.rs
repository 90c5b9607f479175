//! `monocore doctor`: can this host boot microVMs, and how to fix it.

use crate::output::outln;
use std::process::ExitCode;

use monocore::host::{BootKernel, HostProblem, HostReport};

/// The host report as a short table, with the one-line fix for each problem.
pub(crate) fn doctor_table(report: &HostReport) -> String {
    let has = |p: &dyn Fn(&HostProblem) -> bool| report.problems.iter().find(|x| p(x));
    let mut rows: Vec<(&str, bool, String)> = Vec::new();
    let missing = has(&|p| matches!(p, HostProblem::KvmMissing));
    rows.push(match missing {
        Some(p) => ("KVM device", false, p.to_string()),
        None => ("KVM device", true, "/dev/kvm present".to_owned()),
    });
    if missing.is_none() {
        rows.push(
            match has(&|p| matches!(p, HostProblem::KvmNotAccessible { .. })) {
                Some(p) => ("KVM access", false, p.to_string()),
                None => ("KVM access", true, "/dev/kvm opens read-write".to_owned()),
            },
        );
        let pvm = monocore::kernel::host_is_pvm();
        rows.push(match (pvm, has(&|p| matches!(p, HostProblem::NestedPvm { .. }))) {
            (false, _) => ("KVM kind", true, "hardware-assisted KVM".to_owned()),
            (true, found) => (
                "KVM kind",
                found.is_none(),
                "nested paravirtualized KVM (kvm_pvm): stock guest kernels fail with KVM_EXIT_INTERNAL_ERROR; only the compat kernel boots".to_owned(),
            ),
        });
    }
    let kernel_problem = has(&|p| p.is_about_the_kernel());
    rows.push(match (&report.kernel, kernel_problem) {
        (_, Some(HostProblem::NestedPvm { compat })) => ("guest kernel", false, compat.to_string()),
        (_, Some(p)) => ("guest kernel", false, p.to_string()),
        (Some(BootKernel::Libkrunfw), None) => (
            "guest kernel",
            true,
            format!("{} loads", monocore::host::LIBKRUNFW),
        ),
        (Some(kernel), None) => ("guest kernel", true, kernel.to_string()),
        (None, None) => ("guest kernel", true, "not checked".to_owned()),
    });
    rows.push(("CPUs", report.cpus > 0, report.cpus.to_string()));
    rows.push(("memory", true, report.memory_summary()));

    let mut out = String::new();
    for (check, ok, detail) in rows {
        out.push_str(&format!(
            "  {check:<13} {:<5} {detail}\n",
            if ok { "ok" } else { "FAIL" }
        ));
    }
    if let (true, Some(BootKernel::Compat(_))) = (report.can_boot(), &report.kernel) {
        out.push_str(&format!(
            "\nverdict: this host can boot microVMs (compat kernel, slow: ~{} s per boot)\n",
            monocore::kernel::COMPAT_BOOT_SECONDS
        ));
    } else if report.can_boot() {
        out.push_str("\nverdict: this host can boot microVMs\n");
    } else {
        out.push_str("\nverdict: microVMs cannot boot on this host\n");
        for problem in &report.problems {
            out.push_str(&format!("  fix: {}\n", problem.fix()));
        }
    }
    out
}

pub(crate) fn doctor() -> ExitCode {
    let report = monocore::host::check();
    outln!("monocore doctor\n{}", doctor_table(&report).trim_end());
    if report.can_boot() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
