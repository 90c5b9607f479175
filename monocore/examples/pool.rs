//! A warm pool: two VMs booted ahead, a sandbox claimed from it, a command
//! run in it with no boot to wait for, and the time each step took.
//!
//! Run: `cargo run --release -p monocore --example pool` (needs a host
//! that boots VMs: see `monocore doctor`).

use std::time::{Duration, Instant};

use monocore::{
    MonocoreResult,
    pool::{Pool, PoolConfig},
    vm::GuestCommand,
};

fn main() -> MonocoreResult<()> {
    let started = Instant::now();
    let pool = Pool::new(PoolConfig::new(2, 256))?; // boots in the background
    pool.wait_ready(2, Duration::from_secs(300))?;
    println!(
        "pool ready: {} VMs after {:.1?}",
        pool.ready(),
        started.elapsed()
    );

    let asked = Instant::now();
    let mut sandbox = pool.claim(&pool.default_claim())?;
    let out = sandbox.run(GuestCommand::new("uname").args(["-s", "-r"]))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!(
        "claim → output in {:.2?} (VM {}, booted before it was asked for: {})",
        asked.elapsed(),
        sandbox.id().unwrap_or_default(),
        sandbox.was_warm()
    );
    drop(sandbox); // the VM is destroyed; the pool boots a replacement
    Ok(())
}
