//! The host's decoder of what a guest agent sends on the control channel
//! (hostile input): any byte stream reads as messages or fails with a typed
//! error, never panics or allocates past the frame limit; what decodes
//! re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore_agent::control::AgentMessage;

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    while let Ok(Some(message)) = AgentMessage::read(&mut reader) {
        let frame = message.encode().expect("a decoded message encodes");
        let again = AgentMessage::read(&mut &frame[..]).expect("its frame decodes");
        assert_eq!(again, Some(message));
    }
});
