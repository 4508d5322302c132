#![no_main]
//! The CBOR decoder, and rpcv2Cbor request parsing with the real CloudWatch model.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = basalt_protocol::cbor_decode(data);
    let mut framed = b"POST /service/GraniteServiceVersion20100801/operation/PutMetricData\nsmithy-protocol: rpc-v2-cbor\ncontent-type: application/cbor\n\n".to_vec();
    framed.extend_from_slice(data);
    basalt_fuzz::run("cloudwatch", &framed);
});
