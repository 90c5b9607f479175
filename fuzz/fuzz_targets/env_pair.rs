//! `EnvPair`: parse arbitrary text; a value round-trips through `Display`
//! and serde JSON (and `EnvPair::try_new`), an error names the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::config::EnvPair;
use monocore_fuzz::assert_names_input;

fuzz_target!(|input: &str| {
    match input.parse::<EnvPair>() {
        Ok(pair) => {
            let (name, value) = input.split_once('=').expect("accepted without `=`");
            assert!(!name.is_empty() && !input.contains('\0'), "{input:?}");
            assert_eq!(
                (pair.get_name().as_str(), pair.get_value().as_str()),
                (name, value)
            );
            let text = pair.to_string();
            assert_eq!(text, input);
            let again: EnvPair = text.parse().expect("Display output must parse");
            assert_eq!(again, pair);
            let built = EnvPair::try_new(name, value).expect("try_new agrees with FromStr");
            assert_eq!(built, pair);
            let json = serde_json::to_string(&pair).expect("serialize");
            let back: EnvPair = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, pair);
        }
        Err(e) => {
            assert!(
                matches!(e, monocore::MonocoreError::InvalidEnvPair(_)),
                "{e:?}"
            );
            assert_names_input(&e.to_string(), input);
            if let Some((name, value)) = input.split_once('=') {
                assert!(EnvPair::try_new(name, value).is_err(), "{input:?}");
            }
        }
    }
});
