//! Identifiers in the formats AWS uses.

use rand::Rng;

/// A request id in AWS's UUID form.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Random upper-case alphanumerics, the alphabet of access key ids and similar ids.
pub fn upper_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Random lower-case alphanumerics, the alphabet of Bedrock's resource ids (guardrails).
pub fn lower_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Random base64-ish secret material (40 chars, as AWS secret keys).
pub fn secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `x-amz-id-2`-style opaque host id.
pub fn host_id() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
