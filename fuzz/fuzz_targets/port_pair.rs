//! `PortPair`: parse arbitrary text; a value round-trips through `Display`
//! and serde JSON, an error names the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::config::PortPair;
use monocore_fuzz::assert_names_input;

/// An independent reading of one port: ASCII digits only, 1 to 65535.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    let n: u32 = digits.parse().unwrap_or(0);
    u16::try_from(n).ok().filter(|&p| p != 0)
}

fuzz_target!(|input: &str| {
    let expected = match input.split_once(':') {
        None => port(input).map(|p| (p, p)),
        Some((h, g)) => port(h).zip(port(g)),
    };
    match input.parse::<PortPair>() {
        Ok(pair) => {
            assert_eq!(
                Some((pair.get_host(), pair.get_guest())),
                expected,
                "{input:?}"
            );
            let text = pair.to_string();
            let again: PortPair = text.parse().expect("Display output must parse");
            assert_eq!(again, pair, "{input:?} -> {text:?}");
            let json = serde_json::to_string(&pair).expect("serialize");
            let back: PortPair = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, pair);
        }
        Err(e) => {
            assert_eq!(expected, None, "{input:?} rejected: {e}");
            assert!(
                matches!(e, monocore::MonocoreError::InvalidPortPair(_)),
                "{e:?}"
            );
            assert_names_input(&e.to_string(), input);
        }
    }
});
