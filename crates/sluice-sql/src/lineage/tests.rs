//! Lineage through each construct the module docs name, on the demo's
//! tables.

use super::*;

fn schemas(table: &TableName) -> Option<Vec<String>> {
    let columns: &[&str] = match table.table.as_str() {
        "customers" => &[
            "customer_id",
            "name",
            "email",
            "ssn",
            "card_number",
            "phone",
            "address",
            "signup_date",
            "tags",
        ],
        "orders" => &["order_id", "customer_id", "amount", "status"],
        _ => return None,
    };
    Some(columns.iter().map(|c| (*c).to_owned()).collect())
}

fn run(sql: &str) -> Lineage {
    let defaults = Defaults {
        project: "demo".into(),
        dataset: Some("shop".into()),
    };
    let options = LineageOptions {
        counting_aggregates: vec!["COUNT".into()],
    };
    lineage(sql, &defaults, &schemas, &options)
}

fn src(table: &str, path: &str) -> Source {
    Source {
        table: TableName::new("demo", "shop", table),
        path: if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').map(str::to_owned).collect()
        },
    }
}

/// The sources of each output column, as `table.path` strings.
fn outputs(sql: &str) -> Vec<Vec<String>> {
    let lineage = run(sql);
    let columns = lineage
        .columns
        .unwrap_or_else(|| panic!("{sql}: no columns: {:?}", lineage.reasons));
    columns
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c
                .derivation
                .sources
                .iter()
                .map(|s| format!("{}.{}", s.table.table, s.path.join(".")))
                .collect();
            if c.derivation.unknown {
                names.push("?".into());
            }
            names
        })
        .collect()
}

fn ssn_only(sql: &str) {
    assert_eq!(
        outputs(sql),
        vec![vec!["customers.ssn".to_owned()]],
        "{sql}"
    );
}

#[test]
fn aliases_expressions_and_casts_keep_the_source() {
    ssn_only("SELECT ssn FROM customers");
    ssn_only("SELECT ssn AS x FROM customers");
    ssn_only("SELECT c.ssn AS x FROM demo.shop.customers AS c");
    ssn_only("SELECT UPPER(REVERSE(ssn)) FROM customers");
    ssn_only("SELECT CAST(REPLACE(ssn, '-', '') AS INT64) FROM customers");
    ssn_only("SELECT SUBSTR(ssn, 1, 3) || '-' FROM customers");
    ssn_only("SELECT COALESCE(ssn, 'none') FROM `demo.shop.customers`");
    ssn_only("SELECT MAX(ssn) FROM customers");
    ssn_only("SELECT ARRAY_AGG(ssn) FROM customers");
}

#[test]
fn identity_is_kept_only_for_plain_references() {
    let lineage = run("SELECT ssn, x.name, LOWER(email) FROM customers x");
    let columns = lineage.columns.unwrap();
    assert_eq!(
        columns[0].derivation.identity,
        Some(src("customers", "ssn"))
    );
    assert_eq!(
        columns[1].derivation.identity,
        Some(src("customers", "name"))
    );
    assert_eq!(columns[2].derivation.identity, None);
    assert_eq!(columns[0].name.as_deref(), Some("ssn"));
    assert_eq!(columns[1].name.as_deref(), Some("name"));
    assert_eq!(columns[2].name, None);
}

#[test]
fn case_conditions_count() {
    assert_eq!(
        outputs("SELECT CASE WHEN ssn LIKE '1%' THEN name ELSE 'x' END FROM customers"),
        vec![vec![
            "customers.name".to_owned(),
            "customers.ssn".to_owned()
        ]]
    );
    ssn_only("SELECT IF(STARTS_WITH(ssn, '9'), 1, 0) FROM customers");
}

#[test]
fn ctes_and_subqueries() {
    ssn_only(
        "WITH a AS (SELECT ssn AS s FROM customers), b AS (SELECT s AS t FROM a) SELECT t FROM b",
    );
    ssn_only("SELECT s FROM (SELECT ssn AS s FROM customers)");
    ssn_only("SELECT (SELECT MAX(ssn) FROM customers) AS x");
    ssn_only("SELECT ARRAY(SELECT ssn FROM customers LIMIT 3)");
    let identity = run("WITH a AS (SELECT ssn AS s FROM customers) SELECT s FROM a");
    assert_eq!(
        identity.columns.unwrap()[0].derivation.identity,
        Some(src("customers", "ssn"))
    );
}

#[test]
fn correlated_subqueries_see_the_outer_query() {
    assert_eq!(
        outputs(
            "SELECT (SELECT o.amount FROM orders o WHERE o.customer_id = c.customer_id AND c.ssn IS NOT NULL LIMIT 1) FROM customers c"
        ),
        vec![vec!["orders.amount".to_owned()]]
    );
    let lineage = run(
        "SELECT (SELECT o.amount FROM orders o WHERE o.customer_id = c.customer_id AND c.ssn IS NOT NULL LIMIT 1) FROM customers c",
    );
    assert!(lineage.filtered.sources.contains(&src("customers", "ssn")));
    // An unqualified name the inner table lacks is the outer column.
    ssn_only("SELECT (SELECT ssn FROM orders LIMIT 1) FROM customers");
}

#[test]
fn stars_except_replace_and_whole_rows() {
    let star = outputs("SELECT * FROM customers");
    assert_eq!(star.len(), 9);
    assert_eq!(star[3], vec!["customers.ssn".to_owned()]);
    let except = run("SELECT * EXCEPT (ssn, email) FROM customers")
        .columns
        .unwrap();
    assert_eq!(except.len(), 7);
    assert!(
        except
            .iter()
            .all(|c| !c.derivation.sources.contains(&src("customers", "ssn")))
    );
    let replaced = outputs("SELECT * REPLACE (ssn AS name) FROM customers");
    assert_eq!(replaced[1], vec!["customers.ssn".to_owned()]);
    assert_eq!(
        outputs("SELECT c FROM customers c"),
        vec![vec!["customers.".to_owned()]]
    );
    assert_eq!(
        outputs("SELECT TO_JSON_STRING(c) FROM customers c"),
        vec![vec!["customers.".to_owned()]]
    );
    let qualified = outputs(
        "SELECT o.*, c.ssn FROM orders o JOIN customers c ON o.customer_id = c.customer_id",
    );
    assert_eq!(qualified.len(), 5);
    assert_eq!(qualified[4], vec!["customers.ssn".to_owned()]);
}

#[test]
fn star_over_an_unknown_table_is_not_followed() {
    let lineage = run("SELECT * FROM elsewhere");
    assert!(lineage.columns.is_none());
    assert!(!lineage.reasons.is_empty());
    // A named column of it is followed without the schema.
    assert_eq!(
        outputs("SELECT x FROM elsewhere"),
        vec![vec!["elsewhere.x".to_owned()]]
    );
}

#[test]
fn using_columns_come_first_once() {
    let columns = run("SELECT * FROM orders JOIN customers USING (customer_id)")
        .columns
        .unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_deref().unwrap()).collect();
    assert_eq!(names[0], "customer_id");
    assert_eq!(names.len(), 1 + 3 + 8);
    assert_eq!(names.iter().filter(|n| **n == "customer_id").count(), 1);
}

#[test]
fn struct_fields_and_unnest() {
    assert_eq!(
        outputs("SELECT address.zip FROM customers"),
        vec![vec!["customers.address.zip".to_owned()]]
    );
    assert_eq!(
        outputs("SELECT c.address.zip AS z FROM customers c"),
        vec![vec!["customers.address.zip".to_owned()]]
    );
    assert_eq!(
        outputs("SELECT STRUCT(ssn AS a, name AS b).a FROM customers"),
        vec![vec![
            "customers.name".to_owned(),
            "customers.ssn".to_owned()
        ]]
    );
    assert_eq!(
        outputs("SELECT t FROM customers c, UNNEST(c.tags) AS t"),
        vec![vec!["customers.tags".to_owned()]]
    );
    assert_eq!(
        outputs("SELECT t FROM customers c, c.tags AS t"),
        vec![vec!["customers.tags".to_owned()]]
    );
    ssn_only("SELECT x FROM customers, UNNEST(SPLIT(ssn, '-')) AS x");
    assert_eq!(
        outputs("SELECT x, o FROM UNNEST([1, 2]) AS x WITH OFFSET AS o"),
        vec![Vec::<String>::new(), Vec::new()]
    );
}

#[test]
fn set_operations_union_their_branches() {
    assert_eq!(
        outputs("SELECT name FROM customers UNION ALL SELECT ssn FROM customers"),
        vec![vec![
            "customers.name".to_owned(),
            "customers.ssn".to_owned()
        ]]
    );
    let intersect = run("SELECT name FROM customers INTERSECT DISTINCT SELECT ssn FROM customers");
    assert!(
        intersect
            .filtered
            .sources
            .contains(&src("customers", "ssn"))
    );
    let long = vec!["SELECT name FROM customers"; 300].join(" UNION ALL ");
    assert_eq!(outputs(&long).len(), 1);
}

#[test]
fn window_functions_and_aggregates() {
    assert_eq!(
        outputs(
            "SELECT FIRST_VALUE(ssn) OVER (PARTITION BY name ORDER BY customer_id) FROM customers"
        ),
        vec![vec![
            "customers.customer_id".to_owned(),
            "customers.name".to_owned(),
            "customers.ssn".to_owned()
        ]]
    );
    // Counting a plain column does not carry its values; counting an
    // expression of it might.
    assert_eq!(
        outputs("SELECT COUNT(DISTINCT ssn) FROM customers"),
        vec![Vec::<String>::new()]
    );
    ssn_only("SELECT COUNT(IF(ssn LIKE '1%', 1, NULL)) FROM customers");
    ssn_only("SELECT STRING_AGG(ssn, ',') FROM customers");
}

#[test]
fn filters_joins_and_grouping_are_reported() {
    for sql in [
        "SELECT name FROM customers WHERE ssn = '123-45-6789'",
        "SELECT c.name FROM customers c JOIN customers d ON c.ssn = d.ssn",
        "SELECT COUNT(*) FROM customers GROUP BY ssn",
        "SELECT COUNT(*) FROM customers GROUP BY SUBSTR(ssn, 1, 1)",
        "SELECT ssn AS k, COUNT(*) FROM customers GROUP BY k",
        "SELECT ssn, COUNT(*) FROM customers GROUP BY 1",
        "SELECT name FROM customers QUALIFY ROW_NUMBER() OVER (ORDER BY ssn) = 1",
        "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM customers d WHERE d.ssn = c.ssn)",
        "SELECT name, COUNT(*) FROM customers GROUP BY name HAVING MAX(ssn) > '5'",
    ] {
        let lineage = run(sql);
        assert!(
            lineage.filtered.sources.contains(&src("customers", "ssn")),
            "{sql}: {:?}",
            lineage.filtered
        );
    }
    let plain = run("SELECT ssn FROM customers WHERE customer_id < 10 ORDER BY name");
    assert!(!plain.filtered.sources.contains(&src("customers", "ssn")));
}

#[test]
fn unkeyed_hashes_are_reported() {
    for sql in [
        "SELECT TO_HEX(SHA256(ssn)) FROM customers",
        "SELECT FARM_FINGERPRINT(CONCAT(name, ssn)) FROM customers",
        "SELECT name FROM customers WHERE MD5(ssn) = b''",
    ] {
        assert!(run(sql).hashed.contains(&src("customers", "ssn")), "{sql}");
    }
    assert!(
        run("SELECT SHA256(name), ssn FROM customers").hashed == [src("customers", "name")].into()
    );
}

#[test]
fn what_is_not_followed_is_unknown_never_empty() {
    for sql in [
        "SELECT * FROM customers |> WHERE true",
        "SELECT 1; SELECT 2",
        "INSERT INTO t SELECT ssn FROM customers",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT * FROM ML.PREDICT(MODEL m, TABLE customers)",
        "SELECT (",
    ] {
        let lineage = run(sql);
        assert!(lineage.columns.is_none(), "{sql}");
        assert!(!lineage.reasons.is_empty(), "{sql}");
    }
    let columns = run("SELECT no_such_thing.x.y.z FROM customers")
        .columns
        .unwrap();
    assert!(columns[0].derivation.unknown || !columns[0].derivation.sources.is_empty());
}

#[test]
fn date_parts_name_no_column() {
    assert_eq!(
        outputs("SELECT DATE_TRUNC(signup_date, MONTH) FROM customers"),
        vec![vec!["customers.signup_date".to_owned()]]
    );
}

#[test]
fn deep_nesting_gives_up_as_unknown() {
    let mut sql = "SELECT ssn FROM customers".to_owned();
    for _ in 0..60 {
        sql = format!("SELECT * FROM ({sql})");
    }
    let lineage = run(&sql);
    if let Some(columns) = lineage.columns {
        assert_eq!(
            columns[0].derivation.sources,
            [src("customers", "ssn")].into()
        );
    }
}

#[test]
fn query_parameters_name_no_column() {
    let lineage =
        run("SELECT name FROM customers WHERE customer_id = @id AND name IN UNNEST(@names)");
    assert!(!lineage.filtered.unknown, "{:?}", lineage.filtered);
    assert_eq!(
        lineage.filtered.sources,
        [src("customers", "customer_id"), src("customers", "name")].into()
    );
}
