#![no_main]
//! Event-stream frame decoding; whatever decodes must re-encode to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((msg, used)) = basalt_protocol::eventstream::Message::decode(data) {
        assert_eq!(msg.encode(), data[..used].to_vec());
    }
});
