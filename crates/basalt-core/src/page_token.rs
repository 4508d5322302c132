//! Opaque pagination tokens: the position a listing resumes after (a key or a name),
//! base64url-encoded so that clients treat it as opaque. Each service words its own error for a
//! token that does not decode.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position a token stands for; `None` when it is not one of ours.
pub fn decode(token: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_garbage() {
        let t = super::encode("acct/region/name with spaces/é");
        assert_eq!(
            super::decode(&t).as_deref(),
            Some("acct/region/name with spaces/é")
        );
        assert_eq!(super::decode("***"), None);
        assert_eq!(super::decode(&super::encode("")).as_deref(), Some(""));
    }
}
