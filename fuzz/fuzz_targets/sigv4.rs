#![no_main]
//! SigV4 parsing (Authorization header and presigned query) and verification.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = basalt_fuzz::split(data);
    if let Ok(Some(sig)) = basalt_gateway::sigv4::parse(&p.headers, &p.query) {
        let input = basalt_gateway::sigv4::VerifyInput {
            method: &p.method,
            path: &p.path,
            query: &p.query,
            headers: &p.headers,
            payload_hash: "UNSIGNED-PAYLOAD",
            double_encode_path: true,
        };
        let _ = basalt_gateway::sigv4::verify(&sig, &input, "secret", 1_700_000_000);
    }
});
