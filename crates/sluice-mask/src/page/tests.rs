use serde_json::json;

use super::*;
use crate::schema::FieldMode::{Nullable, Repeated, Required};

fn s(name: &str, ty: FieldType) -> FieldSchema {
    FieldSchema::new(name, ty, Nullable)
}

fn schema() -> Vec<FieldSchema> {
    vec![
        FieldSchema::new("customer_id", FieldType::Integer, Required),
        s("name", FieldType::String),
        s("email", FieldType::String),
        s("ssn", FieldType::String),
        FieldSchema::record(
            "address",
            Nullable,
            vec![s("street", FieldType::String), s("zip", FieldType::String)],
        ),
        s("signup_date", FieldType::Date),
        FieldSchema::new("tags", FieldType::String, Repeated),
        s("notes", FieldType::String),
    ]
}

fn row(notes: &str) -> Value {
    json!({"f": [
        {"v": "17"},
        {"v": "Ada Abara"},
        {"v": "ada.abara.17@example.com"},
        {"v": "912-07-0042"},
        {"v": {"f": [{"v": "12 Maple St"}, {"v": "62701"}]}},
        {"v": "2023-06-15"},
        {"v": [{"v": "vip"}, {"v": "call 415-555-0132"}]},
        {"v": notes},
    ]})
}

fn raw(rows: &[Value]) -> Vec<Box<RawValue>> {
    rows.iter()
        .map(|r| serde_json::value::to_raw_value(r).expect("serializes"))
        .collect()
}

fn mask(column: &str, strategy: Strategy, class: Option<&str>) -> ColumnMask {
    ColumnMask {
        column: column.into(),
        strategy,
        class: class.map(str::to_string),
    }
}

fn masked(plan: &MaskPlan, rows: &[Value]) -> (Vec<Value>, MaskCounts) {
    let key = PseudonymKey::new(&[3; 32]).expect("key");
    let masker = PageMasker::new(&schema(), plan, Detectors::all(), Some(&key)).expect("plan");
    let page = masker.mask_page(raw(rows)).expect("masks");
    let rows = page
        .rows
        .iter()
        .map(|r| serde_json::from_str(r.get()).expect("json"))
        .collect();
    (rows, page.counts)
}

fn cell(row: &Value, i: usize) -> &Value {
    &row["f"][i]["v"]
}

#[test]
fn column_masks_apply_in_the_columns_type() {
    let plan = MaskPlan {
        columns: vec![
            mask("ssn", Strategy::Redact, Some("us_ssn")),
            mask("email", Strategy::EmailDomain, None),
            mask("signup_date", Strategy::Year, None),
            mask(
                "customer_id",
                Strategy::Pseudonym {
                    context: "customer".into(),
                },
                None,
            ),
            mask("NAME", Strategy::Last4, None),
        ],
        detect: None,
    };
    let (rows, counts) = masked(&plan, &[row("hello")]);
    let r = &rows[0];
    assert_eq!(cell(r, 3), "[REDACTED:us_ssn]");
    assert_eq!(cell(r, 2), "*****@example.com");
    assert_eq!(cell(r, 5), "2023-01-01");
    assert!(
        cell(r, 0)
            .as_str()
            .expect("INT64 as string")
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert_ne!(cell(r, 0), "17");
    assert_eq!(cell(r, 1), "*****bara");
    assert_eq!(counts.get("ssn", "us_ssn"), 1);
    assert_eq!(counts.get("email", "email"), 1);
    assert_eq!(counts.total(), 5);
}

#[test]
fn nested_fields_and_whole_records() {
    let plan = MaskPlan {
        columns: vec![mask("address.zip", Strategy::First4, None)],
        detect: None,
    };
    let (rows, _) = masked(&plan, &[row("")]);
    assert_eq!(cell(&rows[0], 4)["f"][1]["v"], "62***");
    assert_eq!(cell(&rows[0], 4)["f"][0]["v"], "12 Maple St");

    // A mask on the record covers its fields; a nested mask overrides it.
    let plan = MaskPlan {
        columns: vec![
            mask("address", Strategy::Redact, None),
            mask("address.zip", Strategy::First4, None),
        ],
        detect: None,
    };
    let (rows, counts) = masked(&plan, &[row("")]);
    assert_eq!(cell(&rows[0], 4)["f"][0]["v"], "[REDACTED]");
    assert_eq!(cell(&rows[0], 4)["f"][1]["v"], "62***");
    assert_eq!(counts.get("address.street", "address"), 1);

    let plan = MaskPlan {
        columns: vec![mask("address", Strategy::Null, None)],
        detect: None,
    };
    let (rows, _) = masked(&plan, &[row("")]);
    assert_eq!(cell(&rows[0], 4), &Value::Null);
}

#[test]
fn repeated_fields_mask_every_element() {
    let plan = MaskPlan {
        columns: vec![mask("tags", Strategy::Redact, Some("tag"))],
        detect: None,
    };
    let (rows, counts) = masked(&plan, &[row("")]);
    assert_eq!(
        cell(&rows[0], 6),
        &json!([{"v": "[REDACTED:tag]"}, {"v": "[REDACTED:tag]"}])
    );
    assert_eq!(counts.get("tags", "tag"), 2);

    let plan = MaskPlan {
        columns: vec![mask("tags", Strategy::Null, None)],
        detect: None,
    };
    let (rows, _) = masked(&plan, &[row("")]);
    assert_eq!(cell(&rows[0], 6), &json!([]));
}

#[test]
fn repeated_elements_rendered_null_are_dropped() {
    let schema = vec![FieldSchema::new("ids", FieldType::Integer, Repeated)];
    let plan = MaskPlan {
        columns: vec![mask("ids", Strategy::Redact, None)],
        detect: None,
    };
    let masker = PageMasker::new(&schema, &plan, Detectors::none(), None).expect("plan");
    let row = json!({"f": [{"v": [{"v": "1"}, {"v": "2"}]}]});
    let page = masker.mask_page(raw(&[row])).expect("masks");
    assert_eq!(page.rows[0].get(), r#"{"f":[{"v":[]}]}"#);
    assert_eq!(page.counts.get("ids", "ids"), 2);
}

#[test]
fn detectors_read_only_unmasked_text_cells() {
    let plan = MaskPlan {
        columns: vec![mask("ssn", Strategy::Last4, None)],
        detect: Some(Strategy::Redact),
    };
    let (rows, counts) = masked(
        &plan,
        &[row("card 4111 1111 1111 1111 on file, ssn 123-45-6789")],
    );
    let r = &rows[0];
    // The column mask, not the detector, handled ssn.
    assert_eq!(cell(r, 3), "*******0042");
    assert_eq!(cell(r, 2), "[REDACTED:email]");
    assert_eq!(
        cell(r, 7),
        "card [REDACTED:credit_card] on file, ssn [REDACTED:us_ssn]"
    );
    assert_eq!(cell(r, 6)[1]["v"], "call [REDACTED:phone]");
    assert_eq!(cell(r, 1), "Ada Abara");
    assert_eq!(counts.get("notes", "credit_card"), 1);
    assert_eq!(counts.get("notes", "us_ssn"), 1);
    assert_eq!(counts.get("tags", "phone"), 1);
    assert_eq!(counts.get("ssn", "ssn"), 1);
    assert_eq!(counts.get("ssn", "us_ssn"), 0);
}

#[test]
fn a_deny_detector_refuses_the_page_naming_column_and_class() {
    let plan = MaskPlan {
        columns: vec![],
        detect: Some(Strategy::Deny),
    };
    let masker = PageMasker::new(
        &schema(),
        &plan,
        Detectors::from_names(&["us_ssn"]).expect("known"),
        None,
    )
    .expect("plan");
    let mut r = row("");
    // Clear the ssn column so only notes carries one.
    r["f"][3]["v"] = Value::Null;
    assert!(masker.mask_page(raw(&[r.clone()])).is_ok());
    r["f"][7]["v"] = json!("ssn 123-45-6789");
    let err = masker.mask_page(raw(&[r])).unwrap_err();
    assert_eq!(
        err,
        PageError::Denied {
            row: 0,
            column: "notes".into(),
            class: "us_ssn".into()
        }
    );
    assert!(!err.to_string().contains("6789"));
}

#[test]
fn plans_that_cannot_be_applied_are_refused() {
    let plan = |m: ColumnMask| MaskPlan {
        columns: vec![m],
        detect: None,
    };
    let sc = schema();
    let err = |p: &MaskPlan| PageMasker::new(&sc, p, Detectors::all(), None).unwrap_err();
    assert_eq!(
        err(&plan(mask("sssn", Strategy::Redact, None))),
        PlanError::UnknownColumn {
            column: "sssn".into()
        }
    );
    assert_eq!(
        err(&plan(mask("ssn.inner", Strategy::Redact, None))),
        PlanError::UnknownColumn {
            column: "ssn.inner".into()
        }
    );
    assert_eq!(
        err(&plan(mask("ssn", Strategy::Deny, Some("us_ssn")))),
        PlanError::Denied {
            column: "ssn".into(),
            class: "us_ssn".into()
        }
    );
    assert_eq!(
        err(&plan(mask(
            "ssn",
            Strategy::Pseudonym {
                context: "c".into()
            },
            None
        ))),
        PlanError::MissingKey {
            column: "ssn".into()
        }
    );
    let twice = MaskPlan {
        columns: vec![
            mask("ssn", Strategy::Null, None),
            mask("SSN", Strategy::Redact, None),
        ],
        detect: None,
    };
    assert_eq!(
        err(&twice),
        PlanError::Duplicate {
            column: "SSN".into()
        }
    );
}

#[test]
fn malformed_rows_are_refused_without_echoing_values() {
    let plan = MaskPlan {
        columns: vec![mask("ssn", Strategy::Redact, None)],
        detect: Some(Strategy::Redact),
    };
    let masker = PageMasker::new(&schema(), &plan, Detectors::all(), None).expect("plan");
    let mut wrong_count = row("");
    wrong_count["f"].as_array_mut().expect("cells").pop();
    let mut number_cell = row("");
    number_cell["f"][3]["v"] = json!(912070042);
    let mut record_as_text = row("");
    record_as_text["f"][4]["v"] = json!("912-07-0042");
    let mut repeated_as_text = row("");
    repeated_as_text["f"][6]["v"] = json!("912-07-0042");
    let mut no_v = row("");
    no_v["f"][3] = json!({"x": "912-07-0042"});
    let cases = [
        json!("912-07-0042"),
        json!({"g": []}),
        json!({"f": "912-07-0042"}),
        wrong_count,
        number_cell,
        record_as_text,
        repeated_as_text,
        no_v,
    ];
    for case in cases {
        let err = masker
            .mask_page(raw(std::slice::from_ref(&case)))
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, PageError::Malformed { .. }),
            "{case}: {err:?}"
        );
        assert!(!shown.contains("0042") && !shown.contains("912"), "{shown}");
    }
}

#[test]
fn an_empty_plan_passes_rows_untouched() {
    let plan = MaskPlan::default();
    let masker = PageMasker::new(&schema(), &plan, Detectors::all(), None).expect("plan");
    let rows = raw(&[row("ssn 123-45-6789")]);
    let before: Vec<String> = rows.iter().map(|r| r.get().to_string()).collect();
    let page = masker.mask_page(rows).expect("passes");
    let after: Vec<String> = page.rows.iter().map(|r| r.get().to_string()).collect();
    assert_eq!(before, after);
    assert_eq!(page.counts.total(), 0);
}

#[test]
fn unchanged_rows_keep_their_bytes() {
    let plan = MaskPlan {
        columns: vec![],
        detect: Some(Strategy::Redact),
    };
    let masker = PageMasker::new(&schema(), &plan, Detectors::all(), None).expect("plan");
    // Whitespace shows whether the row was re-serialized.
    let text = r#"{"f": [{"v": "1"}, {"v": "Bo"}, {"v": null}, {"v": null}, {"v": null}, {"v": null}, {"v": []}, {"v": "ok"}]}"#;
    let rows = vec![RawValue::from_string(text.into()).expect("raw")];
    let page = masker.mask_page(rows).expect("passes");
    assert_eq!(page.rows[0].get(), text);
}

#[test]
fn the_announced_schema_makes_masked_fields_nullable() {
    let plan = MaskPlan {
        columns: vec![mask("customer_id", Strategy::Null, None)],
        detect: None,
    };
    let out = masked_schema(&schema(), &plan);
    assert_eq!(out[0].mode, Nullable);
    assert_eq!(out[1..], schema()[1..]);
}

#[test]
fn plans_round_trip_through_json() {
    let plan = MaskPlan {
        columns: vec![mask(
            "ssn",
            Strategy::Pseudonym {
                context: "g-7".into(),
            },
            Some("us_ssn"),
        )],
        detect: Some(Strategy::Redact),
    };
    let text = serde_json::to_string(&plan).expect("serializes");
    assert_eq!(
        serde_json::from_str::<MaskPlan>(&text).expect("parses"),
        plan
    );
}

#[test]
fn counts_merge_across_pages() {
    let plan = MaskPlan {
        columns: vec![mask("ssn", Strategy::Redact, Some("us_ssn"))],
        detect: None,
    };
    let (_, first) = masked(&plan, &[row(""), row("")]);
    let (_, second) = masked(&plan, &[row("")]);
    let mut all = first;
    all.merge(&second);
    assert_eq!(all.get("ssn", "us_ssn"), 3);
    assert_eq!(all.entries.len(), 1);
}

#[test]
fn no_row_shape_panics_the_walk() {
    // Seeded mutations of a good row: every node replaced in turn by a
    // value of each other JSON type; each page is masked or refused.
    let plan = MaskPlan {
        columns: vec![
            mask("address", Strategy::Redact, None),
            mask("tags", Strategy::Null, None),
        ],
        detect: Some(Strategy::Last4),
    };
    let masker = PageMasker::new(&schema(), &plan, Detectors::all(), None).expect("plan");
    let replacements = [
        Value::Null,
        json!(7),
        json!("912-07-0042"),
        json!([]),
        json!([{"v": null}]),
        json!({}),
        json!({"f": []}),
        json!({"v": {"f": [{"v": "x"}]}}),
    ];
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    pointers(item, format!("{at}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    pointers(item, format!("{at}/{k}"), out);
                }
            }
            _ => {}
        }
    }
    let good = row("ssn 123-45-6789");
    let mut all = Vec::new();
    pointers(&good, String::new(), &mut all);
    let mut refused = 0;
    for pointer in &all {
        for replacement in &replacements {
            let mut r = good.clone();
            if let Some(slot) = r.pointer_mut(pointer) {
                *slot = replacement.clone();
            }
            if masker.mask_page(raw(&[r])).is_err() {
                refused += 1;
            }
        }
    }
    assert!(refused > all.len(), "most mutations are refused");
}
