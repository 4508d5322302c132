#![no_main]
//! Request parsing in the query protocol, with the real sns model.
libfuzzer_sys::fuzz_target!(|data: &[u8]| basalt_fuzz::run("sns", data));
