//! Just enough DER to take an X.509 certificate apart (RFC 5280 §4.1): webpki verifies chains
//! but does not say whether a certificate is self-signed or when it expires, which the
//! loopback rule of `tls` needs. Malformed input yields `None`, never a panic.

/// The parts of a certificate the self-signed check reads.
#[derive(Debug, PartialEq)]
pub(crate) struct Certificate<'a> {
    /// The whole `tbsCertificate` element: the signed bytes.
    pub tbs: &'a [u8],
    /// The contents of `signatureAlgorithm` (what webpki's algorithm ids hold).
    pub signature_algorithm: &'a [u8],
    pub signature: &'a [u8],
    /// The encoded issuer and subject names.
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;

/// One element: (tag, contents, the whole element, what follows).
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((tag, &rest[..len], &input[..header + len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let (t, contents, whole, rest) = element(input)?;
    (t == tag).then_some((contents, whole, rest))
}

fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, contents, _, rest) = element(input)?;
    let text = std::str::from_utf8(contents).ok()?;
    let text = text.strip_suffix('Z')?;
    let full = match tag {
        // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY.
        UTC_TIME => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        GENERALIZED_TIME => text.to_owned(),
        _ => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    Some((t.and_utc().timestamp(), rest))
}

pub(crate) fn certificate(der: &[u8]) -> Option<Certificate<'_>> {
    let (cert, _, _) = expect(der, SEQUENCE)?;
    let (tbs_contents, tbs, rest) = expect(cert, SEQUENCE)?;
    let (signature_algorithm, _, rest) = expect(rest, SEQUENCE)?;
    let (bits, _, _) = expect(rest, BIT_STRING)?;
    // The first octet counts unused bits; a signature has none.
    let signature = match bits.split_first()? {
        (0, sig) => sig,
        _ => return None,
    };
    let mut fields = tbs_contents;
    if fields.first() == Some(&VERSION) {
        fields = element(fields)?.3;
    }
    let (_, _, _, fields) = element(fields)?; // serialNumber
    let (_, _, fields) = expect(fields, SEQUENCE)?; // signature
    let (_, issuer, fields) = expect(fields, SEQUENCE)?;
    let (validity, _, fields) = expect(fields, SEQUENCE)?;
    let (not_before, validity) = time(validity)?;
    let (not_after, _) = time(validity)?;
    let (_, subject, _) = expect(fields, SEQUENCE)?;
    Some(Certificate {
        tbs,
        signature_algorithm,
        signature,
        issuer,
        subject,
        not_before,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn reads_a_certificate() {
        let d = der(include_str!("../tests/data/self-signed-127.pem"));
        let c = certificate(&d).unwrap();
        assert_eq!(c.issuer, c.subject);
        // Made by `openssl req -days 36500`: a century apart, give or take leap days.
        let years = (c.not_after - c.not_before) / (365 * 86_400);
        assert_eq!(years, 100);
        // sha256WithRSAEncryption, NULL parameters.
        assert_eq!(
            c.signature_algorithm,
            [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00
            ]
        );
        assert_eq!(c.signature.len(), 256);
        let issued = der(include_str!("../tests/data/ca-issued-127.pem"));
        let c = certificate(&issued).unwrap();
        assert_ne!(c.issuer, c.subject);
    }

    #[test]
    fn malformed_input_is_none_at_every_truncation() {
        let d = der(include_str!("../tests/data/self-signed-127.pem"));
        for n in 0..d.len() {
            assert!(certificate(&d[..n]).is_none(), "{n}");
        }
        assert!(certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(certificate(&[0x30, 0x80]).is_none());
    }

    #[test]
    fn utc_time_centuries() {
        assert_eq!(time(b"\x17\x0d491231235959Z").unwrap().0, 2_524_607_999);
        assert_eq!(time(b"\x17\x0d500101000000Z").unwrap().0, -631_152_000);
        assert_eq!(time(b"\x18\x0f20500101000000Z").unwrap().0, 2_524_608_000);
    }
}
