//! Discovery and JWKS over HTTPS from a private CA: trusted through the
//! issuer's `ca_file`, and failing closed without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_identity::{DevIssuer, IdentityConfig, RawIdentity, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A minimal HTTPS server: answers `GET /.well-known/openid-configuration`
/// and `GET /jwks` (counted), one request per connection.
struct HttpsIssuer {
    issuer: String,
    jwks_fetches: AtomicUsize,
}

async fn serve(discovery_issuer_override: Option<&str>, jwks: Value) -> Arc<HttpsIssuer> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{FIXTURES}/localhost.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/localhost-key.pem")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(HttpsIssuer {
        issuer: format!("https://localhost:{port}"),
        jwks_fetches: AtomicUsize::new(0),
    });
    let discovery = json!({
        "issuer": discovery_issuer_override.unwrap_or(&state.issuer),
        "jwks_uri": format!("{}/jwks", state.issuer),
    });
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, shared, discovery, jwks) = (
                acceptor.clone(),
                shared.clone(),
                discovery.clone(),
                jwks.clone(),
            );
            tokio::spawn(async move {
                // A client that rejects the certificate aborts the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => ("200 OK", discovery.to_string()),
                    "/jwks" => {
                        shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", jwks.to_string())
                    }
                    _ => ("404 Not Found", "{}".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    state
}

fn verifier(issuer: &str, ca_file: Option<String>) -> Verifier {
    let mut entry = json!({"issuer": issuer, "audiences": ["sluice"]});
    if let Some(ca) = ca_file {
        entry["ca_file"] = json!(ca);
    }
    let raw: RawIdentity = serde_json::from_value(json!({"issuers": [entry]})).unwrap();
    Verifier::new(IdentityConfig::from_raw(&raw).unwrap(), None).unwrap()
}

/// An ES256 key in `dir`, used as the HTTPS issuer's signing key. The issuer
/// name is only known once the server listens, so the JWKS (which does not
/// depend on it) is taken first and tokens are minted afterwards.
fn signer(dir: &std::path::Path) -> DevIssuer {
    DevIssuer::load_or_create(dir, "not yet known", "sluice").unwrap()
}

/// A token from `issuer`, signed with the key in `dir`.
fn token_for(issuer: &str, dir: &std::path::Path) -> String {
    let key = DevIssuer::load_or_create(dir, issuer, "sluice").unwrap();
    key.mint("alice", &["analysts".to_string()], Duration::from_secs(300))
}

#[tokio::test]
async fn discovery_over_https_with_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = signer(dir.path()).jwks();
    let server = serve(None, jwks).await;
    let token = token_for(&server.issuer, dir.path());
    let verifier = verifier(&server.issuer, Some(format!("{FIXTURES}/ca.pem")));
    let principal = verifier.verify(&token).await.unwrap();
    assert_eq!(principal.issuer, server.issuer);
    assert_eq!(principal.groups, Vec::<String>::new()); // no groups_claim configured
    assert_eq!(server.jwks_fetches.load(Ordering::SeqCst), 1);
    // Cached: a second token needs no fetch.
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.jwks_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_ca_file_the_fetch_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(None, signer(dir.path()).jwks()).await;
    let token = token_for(&server.issuer, dir.path());
    let err = verifier(&server.issuer, None)
        .verify(&token)
        .await
        .unwrap_err();
    assert!(
        err.reason
            .starts_with("cannot fetch signing keys for issuer"),
        "{err}"
    );
    assert_eq!(server.jwks_fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn discovery_naming_another_issuer_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(Some("https://impostor.example"), signer(dir.path()).jwks()).await;
    let token = token_for(&server.issuer, dir.path());
    let err = verifier(&server.issuer, Some(format!("{FIXTURES}/ca.pem")))
        .verify(&token)
        .await
        .unwrap_err();
    assert!(
        err.reason
            .starts_with("cannot fetch signing keys for issuer"),
        "{err}"
    );
    assert_eq!(server.jwks_fetches.load(Ordering::SeqCst), 0);
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let raw: RawIdentity = serde_json::from_value(json!({"issuers": [
        {"issuer": "https://idp.example", "audiences": ["sluice"], "ca_file": bogus}
    ]}))
    .unwrap();
    let err = Verifier::new(IdentityConfig::from_raw(&raw).unwrap(), None).unwrap_err();
    assert!(err.contains("ca_file"), "{err}");
}
