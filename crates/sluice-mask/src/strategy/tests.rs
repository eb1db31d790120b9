use super::*;

fn key() -> PseudonymKey {
    PseudonymKey::new(b"0123456789abcdef0123456789abcdef").expect("32 bytes")
}

fn text(strategy: &Strategy, value: &str) -> MaskedCell {
    apply(strategy, value, FieldType::String, None, None).expect("applies")
}

fn t(s: &str) -> MaskedCell {
    MaskedCell::Text(s.to_string())
}

#[test]
fn redact_names_the_class_on_text_and_nulls_other_types() {
    assert_eq!(text(&Strategy::Redact, "123-45-6789"), t("[REDACTED]"));
    assert_eq!(
        apply(
            &Strategy::Redact,
            "x",
            FieldType::String,
            Some("us_ssn"),
            None
        ),
        Ok(t("[REDACTED:us_ssn]"))
    );
    assert_eq!(
        apply(&Strategy::Redact, "42", FieldType::Integer, None, None),
        Ok(MaskedCell::Null)
    );
}

#[test]
fn null_is_null_for_every_type() {
    for ty in [FieldType::String, FieldType::Integer, FieldType::Date] {
        assert_eq!(
            apply(&Strategy::Null, "1", ty, None, None),
            Ok(MaskedCell::Null)
        );
    }
}

#[test]
fn last4_and_first4_keep_four_characters() {
    assert_eq!(
        text(&Strategy::Last4, "4111111111111111"),
        t("************1111")
    );
    assert_eq!(
        text(&Strategy::First4, "4111111111111111"),
        t("4111************")
    );
    assert_eq!(text(&Strategy::Last4, "123-45-6789"), t("*******6789"));
}

#[test]
fn last4_and_first4_never_show_a_short_value_whole() {
    assert_eq!(text(&Strategy::Last4, ""), t(""));
    assert_eq!(text(&Strategy::Last4, "7"), t("*"));
    assert_eq!(text(&Strategy::Last4, "1234"), t("**34"));
    assert_eq!(text(&Strategy::First4, "1234"), t("12**"));
    assert_eq!(text(&Strategy::Last4, "1234567"), t("****567"));
}

#[test]
fn last4_and_first4_count_characters_not_bytes() {
    assert_eq!(
        text(&Strategy::Last4, "Zoë Ünal-Çelik"),
        t("**********elik")
    );
    assert_eq!(
        text(&Strategy::First4, "日本語のテキスト"),
        t("日本語の****")
    );
    assert_eq!(text(&Strategy::Last4, "🙂🙂🙂"), t("**🙂"));
}

#[test]
fn last4_on_a_number_renders_null() {
    assert_eq!(
        apply(
            &Strategy::Last4,
            "123456789",
            FieldType::Integer,
            None,
            None
        ),
        Ok(MaskedCell::Null)
    );
}

#[test]
fn email_domain_keeps_only_the_domain() {
    assert_eq!(
        text(&Strategy::EmailDomain, "ada.abara.17@example.com"),
        t("*****@example.com")
    );
    assert_eq!(
        text(&Strategy::EmailDomain, "x@example.org"),
        t("*****@example.org")
    );
}

#[test]
fn email_domain_redacts_what_is_not_an_address() {
    for value in [
        "not an address",
        "@example.com",
        "a@b@example.com",
        "a@localhost",
        "a@.example.com",
        "a@exa mple.com",
        "",
    ] {
        assert_eq!(
            text(&Strategy::EmailDomain, value),
            t("[REDACTED]"),
            "{value}"
        );
    }
}

#[test]
fn year_truncates_temporal_types_and_redacts_text() {
    assert_eq!(
        apply(&Strategy::Year, "2026-12-03", FieldType::Date, None, None),
        Ok(t("2026-01-01"))
    );
    assert_eq!(
        apply(
            &Strategy::Year,
            "1796256000000000",
            FieldType::Timestamp,
            None,
            None
        ),
        Ok(t("1767225600000000"))
    );
    assert_eq!(text(&Strategy::Year, "2026-12-03"), t("[REDACTED]"));
    assert_eq!(
        apply(&Strategy::Year, "garbage", FieldType::Date, None, None),
        Ok(MaskedCell::Null)
    );
    assert_eq!(
        apply(&Strategy::Year, "17", FieldType::Integer, None, None),
        Ok(MaskedCell::Null)
    );
}

#[test]
fn deny_refuses() {
    assert_eq!(
        apply(&Strategy::Deny, "x", FieldType::String, None, None),
        Err(StrategyError::Denied)
    );
}

#[test]
fn pseudonym_needs_a_key_and_renders_the_type() {
    let p = Strategy::Pseudonym {
        context: "us_ssn".into(),
    };
    assert_eq!(
        apply(&p, "x", FieldType::String, None, None),
        Err(StrategyError::MissingKey)
    );
    let k = key();
    let MaskedCell::Text(s) =
        apply(&p, "123-45-6789", FieldType::String, None, Some(&k)).expect("applies")
    else {
        panic!("a STRING pseudonym is text");
    };
    assert!(s.starts_with("psn_"));
    let MaskedCell::Text(n) =
        apply(&p, "123456789", FieldType::Integer, None, Some(&k)).expect("applies")
    else {
        panic!("an INT64 pseudonym is text");
    };
    assert!(n.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        apply(&p, "2026-01-01", FieldType::Date, None, Some(&k)),
        Ok(MaskedCell::Null)
    );
}

#[test]
fn names_round_trip() {
    for s in [
        Strategy::Redact,
        Strategy::Null,
        Strategy::Last4,
        Strategy::First4,
        Strategy::EmailDomain,
        Strategy::Year,
        Strategy::Deny,
        Strategy::Pseudonym {
            context: "c".into(),
        },
    ] {
        assert_eq!(Strategy::from_name(s.name(), "c"), Ok(s.clone()));
    }
    assert!(Strategy::from_name("hash", "").is_err());
}

#[test]
fn strategies_serialize_as_configuration_names() {
    let json = serde_json::to_string(&[
        Strategy::Redact,
        Strategy::Pseudonym {
            context: "g-1".into(),
        },
    ])
    .expect("serializes");
    assert_eq!(json, r#"["redact",{"pseudonym":{"context":"g-1"}}]"#);
    let bare: Strategy = serde_json::from_str(r#"{"pseudonym": {}}"#).expect("parses");
    assert_eq!(
        bare,
        Strategy::Pseudonym {
            context: String::new()
        }
    );
}

#[test]
fn json_cells_stay_json() {
    for strategy in [
        Strategy::Redact,
        Strategy::Last4,
        Strategy::First4,
        Strategy::EmailDomain,
        Strategy::Year,
    ] {
        let masked = apply(
            &strategy,
            r#"{"s":"976-40-7741"}"#,
            FieldType::Json,
            Some("us_ssn"),
            None,
        )
        .unwrap();
        let MaskedCell::Text(text) = masked else {
            panic!("{strategy}: NULL");
        };
        let parsed: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{strategy}: {text:?} is not JSON: {e}"));
        assert!(parsed.is_string(), "{strategy}: {parsed}");
        assert!(!text.contains("976-40-7741"), "{strategy}: {text}");
    }
}
