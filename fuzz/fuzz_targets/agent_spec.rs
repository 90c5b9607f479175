//! The guest agent's run-spec decoder (host → agent): any bytes decode or
//! fail with a typed error, never panic or allocate past the input; what
//! decodes is canonical (it re-encodes to the same bytes) and holds no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore_agent::spec::Spec;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = Spec::decode(data) {
        let strings = [&spec.root_tag, &spec.exec, &spec.workdir]
            .into_iter()
            .chain(&spec.args)
            .chain(&spec.env)
            .chain(spec.mounts.iter().flat_map(|m| [&m.tag, &m.guest_path]));
        for s in strings {
            assert!(!s.contains(&0), "a decoded string holds a NUL");
        }
        assert_eq!(spec.encode().expect("a decoded spec encodes"), data);
    }
});
