//! The agent's decoder of what the host sends on the control channel: any
//! byte stream reads as messages or fails with a typed error, never panics;
//! only an `Exec` frame may be large; what decodes re-encodes to a frame
//! that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore_agent::control::HostMessage;

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    while let Ok(Some(message)) = HostMessage::read(&mut reader) {
        let frame = message.encode().expect("a decoded message encodes");
        let again = HostMessage::read(&mut &frame[..]).expect("its frame decodes");
        assert_eq!(again, Some(message));
    }
});
