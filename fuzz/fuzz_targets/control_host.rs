//! The agent's decoder of what the host sends on the control channel: any
//! byte stream reads as messages or fails with a typed error, never panics;
//! only an `Exec` frame may be large, and its lists (binds, groups, resource
//! limits) are bounded before anything is allocated; what decodes
//! re-encodes to a frame that decodes to the same message; the value check
//! the agent runs on a decoded `Exec` (container names, paths) never panics
//! and gives the same answer for the re-decoded request; so does the check
//! of a file request's target (version 4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore_agent::control::{HostMessage, MAX_BINDS, MAX_GROUPS, MAX_RLIMITS, Place};

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    while let Ok(Some(message)) = HostMessage::read(&mut reader) {
        let frame = message.encode().expect("a decoded message encodes");
        let again = HostMessage::read(&mut &frame[..]).expect("its frame decodes");
        if let (HostMessage::Exec(request), Some(HostMessage::Exec(same))) = (&message, &again) {
            assert_eq!(request.check(), same.check());
            assert!(request.rlimits.len() <= MAX_RLIMITS);
            assert!(request.user.as_ref().is_none_or(|u| u.groups.len() <= MAX_GROUPS));
            if let Place::Create(setup) = &request.place {
                assert!(setup.binds.len() <= MAX_BINDS);
            }
        }
        if let (
            HostMessage::WriteFile { target, .. }
            | HostMessage::ReadFile { target, .. }
            | HostMessage::Make { target, .. }
            | HostMessage::Stat { target, .. },
            Some(
                HostMessage::WriteFile { target: same, .. }
                | HostMessage::ReadFile { target: same, .. }
                | HostMessage::Make { target: same, .. }
                | HostMessage::Stat { target: same, .. },
            ),
        ) = (&message, &again)
        {
            assert_eq!(target.check(), same.check());
        }
        assert_eq!(again, Some(message));
    }
});
