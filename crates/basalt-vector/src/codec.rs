//! Vectors as text for records: little-endian `f32`s in base64 (a third of JSON's size, and
//! exact).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub fn encode(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// `None` for text that is not base64 of whole `f32`s.
pub fn decode(text: &str) -> Option<Vec<f32>> {
    let bytes = STANDARD.decode(text).ok()?;
    (bytes.len() % 4 == 0).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_exactly() {
        let v = [0.25, -1.5, 3.0e-8, f32::MAX];
        assert_eq!(super::decode(&super::encode(&v)).unwrap(), v);
        assert_eq!(super::decode("AAA="), None);
        assert_eq!(super::decode("not base64!"), None);
    }
}
