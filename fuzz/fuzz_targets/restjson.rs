#![no_main]
//! Request parsing in the restjson protocol, with the real bedrock-runtime model.
libfuzzer_sys::fuzz_target!(|data: &[u8]| basalt_fuzz::run("bedrock-runtime", data));
