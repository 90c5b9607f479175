//! The guest agent's report parser (agent → host, hostile input): any bytes
//! parse or fail, never panic; what parses is one bounded printable-ASCII
//! line and parses again, unchanged, from its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore_agent::report::{MAX_REPORT_LEN, Report};

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = Report::parse(data) {
        assert!(data.len() <= MAX_REPORT_LEN);
        assert!(data.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\n'));
        assert_eq!(Report::parse(report.encode().as_bytes()), Ok(report));
    }
});
