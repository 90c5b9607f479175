//! `LinuxRlimit`: parse arbitrary text; a value round-trips through `Display`
//! and serde JSON, an error names the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::vm::{LinuxRlimit, LinuxRlimitResource};
use monocore_fuzz::assert_names_input;

fuzz_target!(|input: &str| {
    match input.parse::<LinuxRlimit>() {
        Ok(limit) => {
            let (soft, hard) = (*limit.get_soft(), *limit.get_hard());
            assert!(soft <= hard, "{input:?}: soft {soft} > hard {hard}");
            let resource = *limit.get_resource();
            // The resource is what the input names, by name or by number.
            let (name, _) = input.split_once('=').expect("accepted without `=`");
            let by_name = resource.to_string() == name;
            let by_number = name.bytes().all(|b| b.is_ascii_digit())
                && name.trim_start_matches('0').parse::<u32>().unwrap_or(0) == resource.as_int();
            assert!(by_name || by_number, "{input:?} parsed as {resource}");
            assert_eq!(
                resource
                    .to_string()
                    .parse::<LinuxRlimitResource>()
                    .expect("resource name"),
                resource
            );
            let text = limit.to_string();
            let again: LinuxRlimit = text.parse().expect("Display output must parse");
            assert_eq!(again, limit, "{input:?} -> {text:?}");
            let json = serde_json::to_string(&limit).expect("serialize");
            let back: LinuxRlimit = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, limit);
        }
        Err(e) => {
            use monocore::MonocoreError as M;
            assert!(matches!(e, M::InvalidRlimit(_)), "{e:?}");
            assert_names_input(&e.to_string(), input);
        }
    }
});
