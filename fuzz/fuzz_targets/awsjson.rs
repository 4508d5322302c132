#![no_main]
//! Request parsing in the awsjson protocol, with the real dynamodb model.
libfuzzer_sys::fuzz_target!(|data: &[u8]| basalt_fuzz::run("dynamodb", data));
