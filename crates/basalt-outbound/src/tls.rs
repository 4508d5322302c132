//! Whom outbound HTTPS trusts (SNS subscriptions, Step Functions HTTP tasks). AWS calls only
//! endpoints whose certificate chains to a trusted CA; Basalt does the same with the system's
//! roots plus the PEM bundle named by `BASALT_CA_BUNDLE` (or, as before, `BASALT_SNS_CA_BUNDLE`).
//! Test servers on a developer's machine usually present a self-signed certificate, so with
//! `BASALT_TRUST_LOOPBACK_TLS=1` (or `BASALT_SNS_TRUST_LOOPBACK_TLS=1`; off by default) a
//! loopback endpoint (127.0.0.0/8, ::1, `localhost`) may also present one: a certificate that
//! names the host, is within its validity dates and is signed by its own key. Nothing else
//! is loosened: a CA-issued certificate the roots do not know, or any certificate on a
//! non-loopback host, still fails the handshake.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Where trust comes from (read once, from the environment, at startup).
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// Extra trusted CAs: a PEM file of one or more certificates.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Accept self-signed certificates on loopback hosts.
    pub trust_loopback_self_signed: bool,
}

impl TlsTrust {
    pub fn from_env() -> TlsTrust {
        TlsTrust {
            ca_bundle: ["BASALT_CA_BUNDLE", "BASALT_SNS_CA_BUNDLE"]
                .iter()
                .find_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
                .map(Into::into),
            trust_loopback_self_signed: [
                "BASALT_TRUST_LOOPBACK_TLS",
                "BASALT_SNS_TRUST_LOOPBACK_TLS",
            ]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))),
        }
    }
}

/// The TLS client configuration of outbound HTTPS.
pub fn client_config(trust: &TlsTrust) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Verifier::new(trust, provider.clone()));
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

fn roots(trust: &TlsTrust) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "reading a system CA certificate failed");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &trust.ca_bundle {
        match CertificateDer::pem_file_iter(path) {
            Ok(certs) => {
                let mut added = 0;
                for cert in certs {
                    match cert.map(|c| roots.add(c)) {
                        Ok(Ok(())) => added += 1,
                        Ok(Err(e)) => {
                            tracing::warn!(path = %path.display(), error = %e, "a certificate of the CA bundle was not added")
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "the CA bundle is not valid PEM")
                        }
                    }
                }
                tracing::info!(path = %path.display(), added, "outbound HTTPS trusts the CAs of the CA bundle");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the CA bundle cannot be read")
            }
        }
    }
    if trust.trust_loopback_self_signed {
        tracing::warn!(
            "loopback TLS trusted: outbound HTTPS to loopback hosts accepts self-signed certificates"
        );
    }
    roots
}

#[derive(Debug)]
struct Verifier {
    /// None when there is no root at all (a bare container without a CA store and no
    /// bundle): then only loopback self-signed certificates can pass, if allowed.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    trust_loopback_self_signed: bool,
}

impl Verifier {
    fn new(trust: &TlsTrust, provider: Arc<CryptoProvider>) -> Verifier {
        let algorithms = provider.signature_verification_algorithms;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(trust)), provider)
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no CA to verify HTTPS endpoints against"))
            .ok();
        Verifier {
            webpki,
            algorithms,
            trust_loopback_self_signed: trust.trust_loopback_self_signed,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let by_roots = match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        match by_roots {
            Ok(ok) => Ok(ok),
            Err(e) if self.trust_loopback_self_signed && is_loopback(server_name) => {
                check_self_signed(end_entity, server_name, now).map_err(|why| {
                    tracing::debug!(%why, "loopback certificate is not an acceptable self-signed one");
                    e
                })?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// 127.0.0.0/8, ::1 and `localhost` (with or without the root's trailing dot).
pub(crate) fn is_loopback(name: &ServerName<'_>) -> bool {
    match name {
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).is_loopback(),
        ServerName::DnsName(d) => d
            .as_ref()
            .trim_end_matches('.')
            .eq_ignore_ascii_case("localhost"),
        _ => false,
    }
}

/// Accepts `der` when it is self-signed (issuer equals subject and its own key verifies its
/// signature), names `server_name` and is valid at `now`.
pub(crate) fn check_self_signed(
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), String> {
    let parts = crate::der::certificate(der.as_ref()).ok_or("not an X.509 certificate")?;
    if parts.issuer != parts.subject {
        return Err("issuer and subject differ: not self-signed".into());
    }
    let now = now.as_secs() as i64;
    if now < parts.not_before || now > parts.not_after {
        return Err("outside the certificate's validity period".into());
    }
    let cert = webpki::EndEntityCert::try_from(der).map_err(|e| format!("{e}"))?;
    cert.verify_is_valid_for_subject_name(server_name)
        .map_err(|e| format!("{e}"))?;
    let verified = webpki::ALL_VERIFICATION_ALGS
        .iter()
        .filter(|alg| alg.signature_alg_id().as_ref() == parts.signature_algorithm)
        .any(|alg| {
            cert.verify_signature(*alg, parts.tbs, parts.signature)
                .is_ok()
        });
    if !verified {
        return Err("not signed by its own key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELF_SIGNED: &str = include_str!("../tests/data/self-signed-127.pem");
    const CA: &str = include_str!("../tests/data/ca.pem");
    const CA_ISSUED: &str = include_str!("../tests/data/ca-issued-127.pem");
    const EXPIRED: &str = include_str!("../tests/data/expired-127.pem");
    const FORGED: &str = include_str!("../tests/data/forged-127.pem");

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn ip(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_owned()).unwrap()
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn loopback_names() {
        for n in ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST."] {
            assert!(is_loopback(&ip(n)), "{n}");
        }
        for n in [
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "localhost.example.com",
            "example.com",
        ] {
            assert!(!is_loopback(&ip(n)), "{n}");
        }
    }

    #[test]
    fn a_self_signed_certificate_for_the_host_passes() {
        let c = der(SELF_SIGNED);
        assert_eq!(check_self_signed(&c, &ip("127.0.0.1"), now()), Ok(()));
        assert_eq!(check_self_signed(&c, &ip("localhost"), now()), Ok(()));
    }

    #[test]
    fn the_name_must_match() {
        let err = check_self_signed(&der(SELF_SIGNED), &ip("127.0.0.2"), now()).unwrap_err();
        assert!(err.contains("NotValidForName"), "{err}");
    }

    #[test]
    fn a_certificate_issued_by_another_ca_is_not_self_signed() {
        let err = check_self_signed(&der(CA_ISSUED), &ip("127.0.0.1"), now()).unwrap_err();
        assert!(err.contains("not self-signed"), "{err}");
    }

    #[test]
    fn an_expired_certificate_fails() {
        let err = check_self_signed(&der(EXPIRED), &ip("127.0.0.1"), now()).unwrap_err();
        assert!(err.contains("validity"), "{err}");
    }

    #[test]
    fn a_signature_by_another_key_fails() {
        // Same issuer and subject as a self-signed certificate, signed by the CA's key.
        let err = check_self_signed(&der(FORGED), &ip("127.0.0.1"), now()).unwrap_err();
        assert!(err.contains("own key"), "{err}");
    }

    fn verifier(loopback: bool, bundle: Option<&str>) -> Verifier {
        let dir =
            std::env::temp_dir().join(format!("basalt-outbound-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_bundle = bundle.map(|pem| {
            let p = dir.join("bundle.pem");
            std::fs::write(&p, pem).unwrap();
            p
        });
        let trust = TlsTrust {
            ca_bundle,
            trust_loopback_self_signed: loopback,
        };
        Verifier::new(
            &trust,
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
    }

    fn verify(v: &Verifier, pem: &str, host: &str) -> bool {
        v.verify_server_cert(&der(pem), &[], &ip(host), &[], now())
            .is_ok()
    }

    #[test]
    fn self_signed_needs_the_switch_and_a_loopback_host() {
        assert!(!verify(&verifier(false, None), SELF_SIGNED, "127.0.0.1"));
        assert!(verify(&verifier(true, None), SELF_SIGNED, "127.0.0.1"));
        // The certificate names 10.0.0.1 too, but that host is not loopback.
        assert!(check_self_signed(&der(SELF_SIGNED), &ip("10.0.0.1"), now()).is_ok());
        assert!(!verify(&verifier(true, None), SELF_SIGNED, "10.0.0.1"));
    }

    #[test]
    fn the_bundle_adds_a_ca() {
        assert!(!verify(&verifier(false, None), CA_ISSUED, "127.0.0.1"));
        assert!(verify(&verifier(false, Some(CA)), CA_ISSUED, "127.0.0.1"));
        // The switch does not extend to CA-issued certificates the roots do not know.
        assert!(!verify(&verifier(true, None), CA_ISSUED, "127.0.0.1"));
    }
}
