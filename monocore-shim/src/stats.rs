//! `stats`: what the VM that runs a task uses, as cgroup v2 metrics (the
//! form containerd's CRI plugin reads): the VMM process's resident memory
//! (the guest's touched RAM and the VMM's own) and its CPU time.

use containerd_shim::protos::{
    cgroups_v2::metrics::{CPUStat, MemoryStat, Metrics},
    protobuf::{Message, well_known_types::any::Any},
};

/// The type URL containerd decodes the metrics by.
pub const METRICS_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every
/// Linux architecture containerd runs on).
const USER_HZ: u64 = 100;

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// User and system CPU time of `/proc/<pid>/stat`, in microseconds. The
/// command name (field 2) may hold spaces and parentheses: the fields are
/// counted after its last `)`.
fn cpu_usec(stat: &str) -> Option<(u64, u64)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let usec = |ticks: u64| ticks.saturating_mul(1_000_000 / USER_HZ);
    Some((usec(utime), usec(stime)))
}

/// The metrics of the VM whose VMM runs as `pid`; zeros for what cannot be
/// read (a VM that has ended).
pub fn of(pid: u32) -> Result<Any, containerd_shim::Error> {
    let read =
        |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let mut memory = MemoryStat::new();
    memory.usage = resident_bytes(&read("status")).unwrap_or(0);
    let mut cpu = CPUStat::new();
    if let Some((user, system)) = cpu_usec(&read("stat")) {
        cpu.user_usec = user;
        cpu.system_usec = system;
        cpu.usage_usec = user.saturating_add(system);
    }
    let mut metrics = Metrics::new();
    metrics.memory = Some(memory).into();
    metrics.cpu = Some(cpu).into();
    let mut any = Any::new();
    any.type_url = METRICS_TYPE.to_owned();
    any.value = metrics
        .write_to_bytes()
        .map_err(|e| containerd_shim::Error::Other(format!("encode the metrics: {e}")))?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vmm_memory_and_cpu_time_are_read_from_proc() {
        let status = "Name:\tx\nVmPeak:\t 900 kB\nVmRSS:\t  2048 kB\nThreads:\t3\n";
        assert_eq!(resident_bytes(status), Some(2048 * 1024));
        assert_eq!(resident_bytes("Name: x\n"), None);
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_usec(stat), Some((2_500_000, 750_000)));
        assert_eq!(cpu_usec("42 (x"), None);
    }

    #[test]
    fn this_process_has_metrics() {
        let any = of(std::process::id()).unwrap();
        assert_eq!(any.type_url, METRICS_TYPE);
        let metrics = Metrics::parse_from_bytes(&any.value).unwrap();
        assert!(metrics.memory.usage > 0);
    }
}
