use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::*;
use crate::test_util::{jwks_kids, workflow_caller};

const ISSUER: &str = "https://sluice.example.com";
const AUDIENCE: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/sluice";

fn caller() -> Caller {
    let claims = json!({
        "repository": "acme/analytics",
        "repository_id": "42",
        "workflow": "nightly",
        "job_workflow_ref": "acme/analytics/.github/workflows/nightly.yml@refs/heads/main",
        "run_id": "9001",
        "run_attempt": 1,
        // Not copied: not in the list, or not a plain value, or too long.
        "email": "dev@acme.example",
        "iss": "https://evil.example",
        "ref": {"nested": true},
        "environment": "x".repeat(300),
    });
    workflow_caller(&claims)
}

/// Verifies `assertion` against `jwks` as a token service would.
fn verify(assertion: &str, jwks: &Value) -> Value {
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published");
    let decoding =
        DecodingKey::from_ec_components(key["x"].as_str().unwrap(), key["y"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
    jsonwebtoken::decode::<Value>(assertion, &decoding, &validation)
        .unwrap()
        .claims
}

#[test]
fn the_assertion_names_the_caller_and_carries_what_conditions_need() {
    let issuer = SluiceIssuer::new(ISSUER, SigningKeys::generate(unix_now()).unwrap()).unwrap();
    let now = unix_now();
    let assertion = issuer.assertion(&caller(), AUDIENCE, now).unwrap();
    let claims = verify(&assertion, &issuer.jwks());

    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(
        claims["sub"],
        "https://token.actions.githubusercontent.com#repo:acme/analytics:ref:refs/heads/main"
    );
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + ASSERTION_LIFETIME.as_secs());
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    assert_eq!(
        claims["caller_iss"],
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(
        claims["caller_sub"],
        "repo:acme/analytics:ref:refs/heads/main"
    );
    assert_eq!(claims["groups"], json!(["ci-analytics"]));
    assert_eq!(claims["policy"], "ci-analytics-read");
    assert_eq!(claims["policies"], json!(["ci-analytics-read"]));
    assert_eq!(claims["repository"], "acme/analytics");
    assert_eq!(claims["repository_id"], "42");
    assert_eq!(claims["workflow"], "nightly");
    assert_eq!(claims["run_id"], "9001");
    assert_eq!(claims["run_attempt"], 1);
    assert!(claims["job_workflow_ref"].is_string());
    for absent in ["email", "ref", "environment"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }

    let again = issuer.assertion(&caller(), AUDIENCE, now).unwrap();
    assert_ne!(verify(&again, &issuer.jwks())["jti"], claims["jti"]);
}

#[test]
fn a_long_subject_is_hashed_to_fit_google_subject() {
    let mut long = caller();
    long.subject = "s".repeat(200);
    let sub = subject(&long);
    assert!(sub.starts_with("sha256:") && sub.len() == 71, "{sub}");
    assert_eq!(sub, subject(&long), "stable");
    long.subject.push('t');
    assert_ne!(sub, subject(&long));
    assert!(subject(&caller()).len() <= 127);
}

#[test]
fn after_a_rotation_assertions_carry_the_new_kid_and_the_old_one_still_verifies() {
    let now = unix_now();
    let issuer = SluiceIssuer::new(ISSUER, SigningKeys::generate(now - 60).unwrap()).unwrap();
    let before = issuer.assertion(&caller(), AUDIENCE, now).unwrap();
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();

    let rotated = issuer.keys().rotate(now, Duration::ZERO, false).unwrap();
    issuer.replace_keys(rotated);
    let after = issuer.assertion(&caller(), AUDIENCE, now).unwrap();
    let new_kid = jsonwebtoken::decode_header(&after).unwrap().kid.unwrap();
    assert_ne!(old_kid, new_kid);

    let jwks = issuer.jwks();
    assert_eq!(jwks_kids(&jwks), [new_kid.as_str(), old_kid.as_str()]);
    verify(&before, &jwks);
    verify(&after, &jwks);
}

#[test]
fn discovery_names_the_issuer_and_where_its_keys_are() {
    let keys = || SigningKeys::generate(unix_now()).unwrap();
    let issuer = SluiceIssuer::new(ISSUER, keys()).unwrap();
    let document = issuer.discovery_document();
    assert_eq!(document["issuer"], ISSUER);
    assert_eq!(
        document["jwks_uri"],
        "https://sluice.example.com/.well-known/sluice/jwks.json"
    );
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(issuer.path(), "");

    let under = SluiceIssuer::new("https://gw.example.com/sluice/", keys()).unwrap();
    assert_eq!(under.path(), "/sluice");
    assert_eq!(
        under.discovery_document()["jwks_uri"],
        "https://gw.example.com/sluice/.well-known/sluice/jwks.json"
    );

    for bad in ["sluice", "ftp://x", "https://x/?a=b", "https://x/#f"] {
        let error = SluiceIssuer::new(bad, keys()).unwrap_err();
        assert!(error.message.contains(bad), "{}", error.message);
    }
}
