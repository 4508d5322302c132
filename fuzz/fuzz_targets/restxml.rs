#![no_main]
//! Request parsing in the restxml protocol, with the real s3 model.
libfuzzer_sys::fuzz_target!(|data: &[u8]| basalt_fuzz::run("s3", data));
