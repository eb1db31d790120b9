use serde_json::json;

use super::*;

fn raw(value: serde_json::Value) -> RawIdentity {
    serde_json::from_value(value).unwrap()
}

fn keys(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(key, _)| key.as_str()).collect()
}

#[test]
fn defaults() {
    let config = IdentityConfig::from_raw(&RawIdentity::default()).unwrap();
    assert!(!config.dev_issuer_enabled());
    assert_eq!(config.dev_issuer_id(), "http://127.0.0.1/sluice-dev-issuer");
    assert_eq!(config.dev_audience(), "sluice");
    assert_eq!(config.leeway, Duration::from_secs(60));
    assert_eq!(config.max_token_bytes, 8192);

    let config = IdentityConfig::from_raw(&raw(json!({
        "issuers": [{"issuer": "https://token.actions.githubusercontent.com/", "audiences": ["sluice"]}],
        "leeway": "30s",
    })))
    .unwrap();
    let issuer = &config.issuers[0];
    assert_eq!(
        issuer.keys,
        KeySource::Discovery(
            Url::parse(
                "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
            )
            .unwrap()
        )
    );
    assert_eq!(issuer.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(issuer.name_claim, "sub");
    assert_eq!(issuer.refresh, Duration::from_secs(600));
    assert_eq!(config.leeway, Duration::from_secs(30));
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let errors = IdentityConfig::from_raw(&raw(json!({
        "issuers": [
            {"issuer": "https://a.example", "audiences": [], "algorithms": ["RS256", "HS256", "none"],
             "refresh": "10"},
            {"issuer": "http://idp.example", "audiences": ["x", ""]},
            {"issuer": "https://c.example", "audiences": ["x"], "jwks_uri": "http://10.0.0.1/jwks",
             "groups": [{"group": "", "when": {}}]},
            {"issuer": "https://a.example", "audiences": ["x"], "discovery_url": "https://user:pw@a.example/d"},
        ],
        "leeway": "2 minutes",
        "max_token_bytes": 10,
    })))
    .unwrap_err();
    let keys = keys(&errors);
    for expected in [
        "identity.leeway",
        "identity.max_token_bytes",
        "identity.issuers[0].audiences",
        "identity.issuers[0].algorithms[1]",
        "identity.issuers[0].algorithms[2]",
        "identity.issuers[0].refresh",
        "identity.issuers[1].issuer",
        "identity.issuers[1].audiences[1]",
        "identity.issuers[2].jwks_uri",
        "identity.issuers[2].groups[0].group",
        "identity.issuers[2].groups[0].when",
        "identity.issuers[3].discovery_url",
        "identity.issuers[3].issuer",
    ] {
        assert!(
            keys.contains(&expected),
            "missing {expected} in {errors:#?}"
        );
    }
    let reason = |key: &str| &errors.iter().find(|(k, _)| k == key).unwrap().1;
    assert!(reason("identity.issuers[0].algorithms[1]").contains("HS256"));
    assert!(reason("identity.issuers[1].issuer").contains("https"));
    assert!(reason("identity.issuers[3].discovery_url").contains("credentials"));
    assert!(reason("identity.issuers[3].issuer").contains("twice"));
}

#[test]
fn loopback_http_is_allowed_and_other_http_is_not() {
    for ok in [
        "http://127.0.0.1:8080/jwks",
        "http://[::1]/jwks",
        "http://localhost:1/x",
        "https://idp.example/jwks",
    ] {
        assert!(fetch_url(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example/jwks",
        "http://10.0.0.1/jwks",
        "http://localhost.evil.example/",
        "ftp://idp.example/",
        "file:///etc/passwd",
        "not a url",
    ] {
        assert!(fetch_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn development_issuer_settings() {
    let config = IdentityConfig::from_raw(&raw(json!({
        "development_issuer": {"enabled": true, "audience": "demo", "issuer": "http://127.0.0.1:9050/dev"},
    })))
    .unwrap();
    assert!(config.dev_issuer_enabled());
    assert_eq!(config.dev_issuer_id(), "http://127.0.0.1:9050/dev");
    assert_eq!(config.dev_audience(), "demo");

    let errors = IdentityConfig::from_raw(&raw(json!({
        "issuers": [{"issuer": "https://same.example", "audiences": ["x"]}],
        "development_issuer": {"enabled": true, "audience": " ", "issuer": "https://same.example"},
    })))
    .unwrap_err();
    assert_eq!(
        keys(&errors),
        vec![
            "identity.development_issuer.audience",
            "identity.development_issuer.issuer"
        ]
    );
}

#[test]
fn unknown_fields_are_refused() {
    let typo = json!({"issuers": [{"issuer": "https://a.example", "audience": ["x"]}]});
    assert!(serde_json::from_value::<RawIdentity>(typo).is_err());
    let typo = json!({"development_issuer": {"enable": true}});
    assert!(serde_json::from_value::<RawIdentity>(typo).is_err());
}

/// A claim of a group rule takes one glob or a list of them; numbers and
/// booleans are their text, so a numeric id can be written either way.
#[test]
fn group_rule_claims_take_a_value_or_a_list() {
    let config = IdentityConfig::from_raw(&raw(json!({
        "issuers": [{"issuer": "https://idp.example", "audiences": ["x"], "groups": [
            {"group": "g", "when": {
                "event_name": ["push", "schedule"],
                "repository_id": 123,
                "ref": "refs/heads/main",
                "ref_protected": true,
            }},
        ]}],
    })))
    .unwrap();
    let when = &config.issuers[0].group_rules[0].when;
    let when: Vec<(&str, Vec<&str>)> = when
        .iter()
        .map(|(claim, globs)| (claim.as_str(), globs.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        when,
        [
            ("event_name", vec!["push", "schedule"]),
            ("ref", vec!["refs/heads/main"]),
            ("ref_protected", vec!["true"]),
            ("repository_id", vec!["123"]),
        ]
    );

    let errors = IdentityConfig::from_raw(&raw(json!({
        "issuers": [{"issuer": "https://idp.example", "audiences": ["x"], "groups": [
            {"group": "g", "when": {"event_name": [], "ref": "refs/heads/main"}},
        ]}],
    })))
    .unwrap_err();
    assert_eq!(
        keys(&errors),
        ["identity.issuers[0].groups[0].when.event_name"]
    );
    for bad in [
        json!({"ref": {"a": 1}}),
        json!({"ref": [["refs/heads/main"]]}),
        json!({"ref": 1.5}),
        json!({"ref": null}),
    ] {
        let rule = json!({"issuers": [{"issuer": "https://idp.example", "audiences": ["x"],
            "groups": [{"group": "g", "when": bad}]}]});
        assert!(
            serde_json::from_value::<RawIdentity>(rule.clone()).is_err(),
            "{rule}"
        );
    }
}
