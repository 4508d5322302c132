//! Message signatures, as AWS signs SNS messages: an RSA key and a self-signed X.509
//! certificate that Basalt makes once and keeps in the store (so every node and every restart
//! signs with the same key), served at `SigningCertURL`; SignatureVersion 1 is SHA1withRSA and
//! 2 SHA256withRSA over the canonical string of the message's fields
//! (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>).
//!
//! RSA comes from aws-lc-rs, already in the build for rustls. Its safe API signs PKCS#1 v1.5
//! with SHA-256 but not SHA-1, so version 1 goes through AWS-LC's `EVP_DigestSign`.

use crate::model::SIGNING;
use crate::{b64, now_ms};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use basalt_core::AwsError;
use basalt_store::{StateStore, StoreError, WriteOp};
use serde::{Deserialize, Serialize};

const RECORD: &str = "key";

#[derive(Serialize, Deserialize)]
struct Stored {
    pkcs8: String,
    cert_pem: String,
}

pub struct Signer {
    key: KeyPair,
    pkcs8: Vec<u8>,
    pub cert_pem: String,
    /// `SimpleNotificationService-<hash>.pem`, as AWS names its certificates.
    pub cert_name: String,
}

fn crypto_err(what: &str) -> AwsError {
    AwsError::internal(format!("SNS signing key: {what}"))
}

impl Signer {
    /// Loads the key, or makes one and stores it (the first of several nodes wins).
    pub fn load_or_create(state: &dyn StateStore) -> Result<Signer, AwsError> {
        for _ in 0..3 {
            if let Some(raw) = state.get(SIGNING, RECORD)? {
                let s: Stored = serde_json::from_slice(&raw)
                    .map_err(|e| crypto_err(&format!("corrupt record: {e}")))?;
                return Signer::from_stored(&s);
            }
            let s = generate()?;
            match state.batch(&[
                WriteOp::Check {
                    table: SIGNING.into(),
                    key: RECORD.into(),
                    expected: None,
                },
                WriteOp::Put {
                    table: SIGNING.into(),
                    key: RECORD.into(),
                    value: serde_json::to_vec(&s).unwrap_or_default(),
                },
            ]) {
                Ok(()) => return Signer::from_stored(&s),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(crypto_err("could not be stored"))
    }

    fn from_stored(s: &Stored) -> Result<Signer, AwsError> {
        use base64::Engine;
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(&s.pkcs8)
            .map_err(|_| crypto_err("bad encoding"))?;
        let key = KeyPair::from_pkcs8(&pkcs8).map_err(|_| crypto_err("unreadable"))?;
        use sha2::Digest;
        let hash = sha2::Sha256::digest(s.cert_pem.as_bytes());
        let cert_name = format!(
            "SimpleNotificationService-{}.pem",
            hash[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(Signer {
            key,
            pkcs8,
            cert_pem: s.cert_pem.clone(),
            cert_name,
        })
    }

    /// Signs `text` for SignatureVersion `version` (1: SHA1withRSA, 2: SHA256withRSA); base64.
    pub fn sign(&self, version: u8, text: &str) -> Result<String, AwsError> {
        let sig = if version == 2 {
            sign_sha256(&self.key, text.as_bytes())?
        } else {
            sign_sha1(&self.pkcs8, text.as_bytes())?
        };
        Ok(b64(&sig))
    }
}

fn sign_sha256(key: &KeyPair, msg: &[u8]) -> Result<Vec<u8>, AwsError> {
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg,
        &mut sig,
    )
    .map_err(|_| crypto_err("signing failed"))?;
    Ok(sig)
}

/// PKCS#1 v1.5 with SHA-1 through AWS-LC's EVP interface (not in aws-lc-rs's safe API).
fn sign_sha1(pkcs8: &[u8], msg: &[u8]) -> Result<Vec<u8>, AwsError> {
    use aws_lc_sys as ffi;
    // SAFETY: every pointer passed is either valid for the call (slices, locals) or was
    // checked for null after AWS-LC returned it; both objects are freed on every path.
    unsafe {
        let mut cbs = ffi::CBS {
            data: std::ptr::null(),
            len: 0,
        };
        ffi::CBS_init(&mut cbs, pkcs8.as_ptr(), pkcs8.len());
        let pkey = ffi::EVP_parse_private_key(&mut cbs);
        if pkey.is_null() {
            return Err(crypto_err("unreadable"));
        }
        let ctx = ffi::EVP_MD_CTX_new();
        if ctx.is_null() {
            ffi::EVP_PKEY_free(pkey);
            return Err(crypto_err("out of memory"));
        }
        let mut out = Vec::new();
        let mut len = 0usize;
        let ok = ffi::EVP_DigestSignInit(
            ctx,
            std::ptr::null_mut(),
            ffi::EVP_sha1(),
            std::ptr::null_mut(),
            pkey,
        ) == 1
            && ffi::EVP_DigestSign(ctx, std::ptr::null_mut(), &mut len, msg.as_ptr(), msg.len())
                == 1
            && {
                out.resize(len, 0);
                ffi::EVP_DigestSign(ctx, out.as_mut_ptr(), &mut len, msg.as_ptr(), msg.len()) == 1
            };
        ffi::EVP_MD_CTX_free(ctx);
        ffi::EVP_PKEY_free(pkey);
        if !ok {
            return Err(crypto_err("signing failed"));
        }
        out.truncate(len);
        Ok(out)
    }
}

fn generate() -> Result<Stored, AwsError> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| crypto_err("generation failed"))?;
    let pkcs8 = key
        .as_der()
        .map_err(|_| crypto_err("encoding failed"))?
        .as_ref()
        .to_vec();
    let spki = key
        .public_key()
        .as_der()
        .map_err(|_| crypto_err("encoding failed"))?
        .as_ref()
        .to_vec();
    let cert = certificate(&key, &spki, now_ms() / 1000)?;
    Ok(Stored {
        pkcs8: b64(&pkcs8),
        cert_pem: pem("CERTIFICATE", &cert),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// --- a minimal DER writer for one self-signed certificate ---------------------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A positive INTEGER from big-endian bytes.
fn integer(be: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = if trimmed.is_empty() { vec![0] } else { trimmed };
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// sha256WithRSAEncryption (1.2.840.113549.1.1.11) with NULL parameters.
const SHA256_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];

fn name(common_name: &str) -> Vec<u8> {
    let attr =
        |oid: &[u8], value: &str| tlv(0x31, &seq(&[&tlv(0x06, oid), &tlv(0x0c, value.as_bytes())]));
    seq(&[
        &attr(&[0x55, 0x04, 0x06], "US"),
        &attr(&[0x55, 0x04, 0x0a], "Basalt"),
        &attr(&[0x55, 0x04, 0x03], common_name),
    ])
}

/// UTCTime (years before 2050) or GeneralizedTime.
fn time(secs: i64) -> Vec<u8> {
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    use chrono::Datelike;
    if t.year() < 2050 {
        tlv(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
    } else {
        tlv(0x18, t.format("%Y%m%d%H%M%SZ").to_string().as_bytes())
    }
}

fn certificate(key: &KeyPair, spki: &[u8], now_s: i64) -> Result<Vec<u8>, AwsError> {
    use rand::RngCore;
    let mut serial = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let subject = name("sns.amazonaws.com");
    let version = tlv(0xa0, &integer(&[2]));
    let validity = seq(&[&time(now_s - 86_400), &time(now_s + 20 * 365 * 86_400)]);
    let tbs = seq(&[
        &version,
        &integer(&serial),
        SHA256_WITH_RSA,
        &subject,
        &validity,
        &subject,
        spki,
    ]);
    let sig = sign_sha256(key, &tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    Ok(seq(&[&tbs, SHA256_WITH_RSA, &tlv(0x03, &bits)]))
}

/// The string AWS signs for a notification: Message, MessageId, Subject (if any), Timestamp,
/// TopicArn, Type, each as `name\nvalue\n`.
pub fn notification_text(
    message: &str,
    message_id: &str,
    subject: Option<&str>,
    timestamp: &str,
    topic_arn: &str,
) -> String {
    let mut s = format!("Message\n{message}\nMessageId\n{message_id}\n");
    if let Some(subject) = subject {
        s.push_str(&format!("Subject\n{subject}\n"));
    }
    s.push_str(&format!(
        "Timestamp\n{timestamp}\nTopicArn\n{topic_arn}\nType\nNotification\n"
    ));
    s
}

/// The string AWS signs for a SubscriptionConfirmation (or UnsubscribeConfirmation).
pub fn confirmation_text(
    kind: &str,
    message: &str,
    message_id: &str,
    subscribe_url: &str,
    timestamp: &str,
    token: &str,
    topic_arn: &str,
) -> String {
    format!(
        "Message\n{message}\nMessageId\n{message_id}\nSubscribeURL\n{subscribe_url}\nTimestamp\n{timestamp}\nToken\n{token}\nTopicArn\n{topic_arn}\nType\n{kind}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_and_signs_both_versions() {
        let state = basalt_store::MemoryState::default();
        let a = Signer::load_or_create(&state).unwrap();
        let b = Signer::load_or_create(&state).unwrap();
        assert_eq!(a.cert_pem, b.cert_pem);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(a.cert_name.starts_with("SimpleNotificationService-"));
        let text = notification_text("hi", "id", Some("s"), "2024-01-01T00:00:00.000Z", "arn");
        for version in [1, 2] {
            use base64::Engine;
            let sig = base64::engine::general_purpose::STANDARD
                .decode(a.sign(version, &text).unwrap())
                .unwrap();
            assert_eq!(sig.len(), 256);
            // Verify with the public key from the key pair.
            let public = a.key.public_key().as_ref().to_vec();
            let params = if version == 2 {
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            };
            aws_lc_rs::signature::UnparsedPublicKey::new(params, &public)
                .verify(text.as_bytes(), &sig)
                .unwrap();
        }
    }

    #[test]
    fn canonical_strings() {
        assert_eq!(
            notification_text("m", "i", None, "t", "a"),
            "Message\nm\nMessageId\ni\nTimestamp\nt\nTopicArn\na\nType\nNotification\n"
        );
        assert!(
            confirmation_text("SubscriptionConfirmation", "m", "i", "u", "t", "k", "a")
                .ends_with("Token\nk\nTopicArn\na\nType\nSubscriptionConfirmation\n")
        );
    }

    #[test]
    fn der_lengths() {
        assert_eq!(tlv(0x04, &[1; 3]), vec![4, 3, 1, 1, 1]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0, 5]), vec![2, 1, 5]);
    }
}
