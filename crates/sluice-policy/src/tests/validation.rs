//! Validation of raw policies: every mistake reported with its key path.

use super::*;

#[test]
fn three_mistakes_are_three_errors_with_key_paths() {
    let good = policy("a", &["g"], &["proj.shop.*"], &[], &["select"]);
    let mut bad = policy("b", &["g"], &["proj..x"], &[], &["selcet"]);
    bad.limits.max_bytes_billed = Some("10 GB please".into());
    let errors = PolicySet::build(&[good, bad], &RawGuardrails::default()).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "policies[1].allow.read[0]",
            "policies[1].allow.statements[0]",
            "policies[1].limits.max_bytes_billed"
        ],
        "{errors:?}"
    );
    assert!(errors[1].reason.contains("`selcet`") && errors[1].reason.contains("select, insert"));
    assert!(
        errors[1]
            .to_string()
            .starts_with("policies[1].allow.statements[0]: unknown statement")
    );
}

#[test]
fn unknown_guardrail_lists_the_valid_names() {
    let errors = PolicySet::build(&[], &guardrails(&["drop", "dorp"])).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, "guardrails.deny[1]");
    assert!(
        errors[0].reason.contains("delete_without_where"),
        "{}",
        errors[0].reason
    );
}

#[test]
fn flags_are_guardrails_but_not_statements() {
    assert!(
        PolicySet::build(
            &[],
            &guardrails(&["delete_without_where", "ddl", "external_query"])
        )
        .is_ok()
    );
    let errors = PolicySet::build(
        &[policy("a", &["g"], &[], &[], &["external_query"])],
        &RawGuardrails::default(),
    )
    .unwrap_err();
    assert_eq!(errors[0].key, "policies[0].allow.statements[0]");
}

#[test]
fn names_who_and_limits_are_validated() {
    let nobody = policy("nobody", &[], &["proj"], &[], &["select"]);
    let dup1 = policy("dup", &["g"], &[], &[], &[]);
    let dup2 = policy("dup", &["g"], &[], &[], &[]);
    let unnamed = policy("", &["g"], &[], &[], &[]);
    let reserved = policy("guardrails", &["g"], &[], &[], &[]);
    let mut zero = policy("zero", &["g", ""], &["a.b.c.d.e"], &["ok", "x;y"], &[]);
    zero.limits.max_bytes_billed = Some(RawByteSize::Bytes(0));
    zero.limits.max_rows = Some(0);
    zero.deny = strings(&["DROP"]);
    let errors = PolicySet::build(
        &[nobody, dup1, dup2, unnamed, reserved, zero],
        &RawGuardrails::default(),
    )
    .unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "policies[0].who: matches nobody: give who.groups or who.principals",
        "policies[2].name: duplicate policy name `dup` (also policies[1].name)",
        "policies[3].name: a policy needs a non-empty name",
        "policies[4].name: `guardrails` is reserved",
        "policies[5].who.groups[1]: empty groups entry",
        "policies[5].allow.read[0]: `a.b.c.d.e` has 5 segments",
        "policies[5].allow.write[1]: `x;y` contains `;`",
        "policies[5].deny[0]: unknown guardrail name `DROP`",
        "policies[5].limits.max_bytes_billed: must be greater than zero",
        "policies[5].limits.max_rows: must be greater than zero",
    ];
    assert_eq!(rendered.len(), expect.len(), "{rendered:#?}");
    for (got, want) in rendered.iter().zip(expect) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn policy_names_in_order() {
    assert_eq!(demo_set().policy_names(), ["agents-read", "etl"]);
}

#[test]
fn raw_policies_parse_from_yaml() {
    #[derive(serde::Deserialize)]
    struct File {
        policies: Vec<RawPolicy>,
        guardrails: RawGuardrails,
    }
    let yaml = r#"
policies:
  - name: a
    who: { groups: [g] }
    allow: { read: ["proj.shop.*"], statements: [select] }
    limits: { max_bytes_billed: 10GiB, max_rows: 10 }
  - name: b
    who: { principals: ["svc-*"] }
    limits: { max_bytes_billed: 1024 }
guardrails:
  deny: [drop]
"#;
    let file: File = serde_saphyr::from_str(yaml).expect("parses");
    assert_eq!(
        file.policies[0].limits.max_bytes_billed,
        Some(RawByteSize::Text("10GiB".to_owned()))
    );
    assert_eq!(
        file.policies[1].limits.max_bytes_billed,
        Some(RawByteSize::Bytes(1024))
    );
    let set = PolicySet::build(&file.policies, &file.guardrails).expect("valid");
    assert_eq!(set.policy_names(), ["a", "b"]);

    let typo = "name: a\nwho: { group: [g] }\n";
    assert!(serde_saphyr::from_str::<RawPolicy>(typo).is_err());
    let negative = "name: a\nlimits: { max_bytes_billed: -5 }\n";
    assert!(serde_saphyr::from_str::<RawPolicy>(negative).is_err());
}
