//! The JSON examples in `docs/masking.md` are real plans: each parses and
//! applies to a `customers`-shaped page.

use serde_json::{Value, json};
use sluice_mask::schema::FieldMode::{Nullable, Required};
use sluice_mask::{Detectors, FieldSchema, FieldType, MaskPlan, PageMasker, PseudonymKey};

const PAGE: &str = include_str!("../../../../docs/masking.md");

fn json_blocks(markdown: &str) -> Vec<&str> {
    markdown
        .split("```json\n")
        .skip(1)
        .map(|block| block.split("```").next().expect("a closed block"))
        .collect()
}

#[test]
fn the_plans_in_the_masking_docs_parse_and_apply() {
    let blocks = json_blocks(PAGE);
    assert!(!blocks.is_empty(), "docs/masking.md shows a plan");
    let s = |n: &str| FieldSchema::new(n, FieldType::String, Nullable);
    let schema = vec![
        FieldSchema::new("customer_id", FieldType::Integer, Required),
        s("name"),
        s("email"),
        s("ssn"),
        s("card_number"),
        FieldSchema::record("address", Nullable, vec![s("city"), s("zip")]),
    ];
    let row = json!({"f": [
        {"v": "17"},
        {"v": "Ada Abara, 415-555-0132"},
        {"v": "ada@example.com"},
        {"v": "912-07-0042"},
        {"v": "4111111111111111"},
        {"v": {"f": [{"v": "Springfield"}, {"v": "62701"}]}},
    ]});
    let key = PseudonymKey::new(&[1; 32]).expect("key");
    for block in blocks {
        let plan: MaskPlan = serde_json::from_str(block).expect("the example is a MaskPlan");
        let masker = PageMasker::new(&schema, &plan, Detectors::all(), Some(&key))
            .expect("the example applies to customers");
        let raw = serde_json::value::to_raw_value(&row).expect("raw");
        let page = masker.mask_page(vec![raw]).expect("masks");
        let out: Value = serde_json::from_str(page.rows[0].get()).expect("json");
        let text = out.to_string();
        for raw_value in [
            "912-07-0042",
            "4111111111111111",
            "ada@example.com",
            "415-555-0132",
        ] {
            assert!(!text.contains(raw_value), "{raw_value} in {text}");
        }
    }
}
