//! The report of `monocore doctor` (and `python -m monocore doctor`): a
//! [`HostReport`] and the networking check ([`crate::net::find_passt`]) as
//! rows of checks, a verdict and the fixes, as a table ([`table`]) or as
//! JSON ([`json`]). A layer of its own, above `host` and `net`.
//!
//! ```
//! let report = monocore::host::check();
//! let text = monocore::doctor::table(&report);
//! assert!(text.contains("verdict: "));
//! assert_eq!(monocore::doctor::json(&report)["can_boot"], report.can_boot());
//! ```

use serde_json::json;

use crate::host::{BootKernel, HostProblem, HostReport};

/// One row of the report: what was checked, whether it passed, and what
/// was found.
pub type Row = (&'static str, bool, String);

/// The rows of the host report.
pub fn rows(report: &HostReport) -> Vec<Row> {
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
        let pvm = crate::host::kernel::host_is_pvm();
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
            format!("{} loads", crate::host::LIBKRUNFW),
        ),
        (Some(kernel), None) => ("guest kernel", true, kernel.to_string()),
        (None, None) => ("guest kernel", true, "not checked".to_owned()),
    });
    // Optional: only VMs with `net` need it, so it never changes the verdict.
    rows.push(match crate::net::find_passt() {
        Ok(path) => (
            "networking",
            true,
            format!("passt at {} (for `--net`)", path.display()),
        ),
        Err(e) => (
            "networking",
            false,
            format!("{e} (only VMs with `--net` need it)"),
        ),
    });
    rows.push(("CPUs", report.cpus > 0, report.cpus.to_string()));
    rows.push(("memory", true, report.memory_summary()));
    rows
}

/// The verdict line.
pub fn verdict(report: &HostReport) -> String {
    if let (true, Some(BootKernel::Compat(_))) = (report.can_boot(), &report.kernel) {
        format!(
            "this host can boot microVMs (compat kernel, slow: ~{} s per boot at 128 MiB)",
            crate::host::kernel::COMPAT_BOOT_SECONDS
        )
    } else if report.can_boot() {
        "this host can boot microVMs".to_owned()
    } else {
        "microVMs cannot boot on this host".to_owned()
    }
}

/// The host report as a short table, with the one-line fix for each problem.
pub fn table(report: &HostReport) -> String {
    let mut out = String::new();
    for (check, ok, detail) in rows(report) {
        out.push_str(&format!(
            "  {check:<13} {:<5} {detail}\n",
            if ok { "ok" } else { "FAIL" }
        ));
    }
    out.push_str(&format!("\nverdict: {}\n", verdict(report)));
    if !report.can_boot() {
        for problem in &report.problems {
            out.push_str(&format!("  fix: {}\n", problem.fix()));
        }
    }
    out
}

/// The host report as JSON (documented in the README; keys are only ever
/// added).
pub fn json(report: &HostReport) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = rows(report)
        .into_iter()
        .map(|(check, ok, detail)| json!({ "check": check, "ok": ok, "detail": detail }))
        .collect();
    let problems: Vec<serde_json::Value> = report
        .problems
        .iter()
        .map(|p| json!({ "problem": p.to_string(), "fix": p.fix() }))
        .collect();
    let mib = |kib: Option<u64>| kib.map(|k| k / 1024);
    json!({
        "can_boot": report.can_boot(),
        "verdict": verdict(report),
        "kernel": report.kernel.as_ref().map(ToString::to_string),
        "checks": checks,
        "problems": problems,
        "cpus": report.cpus,
        "memory_total_mib": mib(report.mem_total_kib),
        "memory_available_mib": mib(report.mem_available_kib),
    })
}
