//! `PathPair`: parse arbitrary text; a value round-trips through `Display`
//! and serde JSON, an error names the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::config::PathPair;
use monocore_fuzz::assert_names_input;

fuzz_target!(|input: &str| {
    match input.parse::<PathPair>() {
        Ok(pair) => {
            let text = pair.to_string();
            let again: PathPair = text.parse().expect("Display output must parse");
            assert_eq!(again, pair, "{input:?} -> {text:?}");
            assert_eq!(again.to_string(), text);
            // The parts are what the input says: `host:guest`, or one path.
            let (host, guest) = input.split_once(':').unwrap_or((input, input));
            assert_eq!(pair.get_host().as_str(), host);
            assert_eq!(pair.get_guest().as_str(), guest);
            let json = serde_json::to_string(&pair).expect("serialize");
            let back: PathPair = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, pair);
        }
        Err(e) => {
            assert!(
                matches!(e, monocore::MonocoreError::InvalidPathPair(_)),
                "{e:?}"
            );
            assert_names_input(&e.to_string(), input);
            // The string form is rejected by serde in the same way.
            let json = serde_json::to_string(input).expect("serialize a str");
            assert!(serde_json::from_str::<PathPair>(&json).is_err());
        }
    }
});
