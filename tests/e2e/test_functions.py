"""BigQuery SQL as agents write it: functions, clauses and their BigQuery semantics."""

import datetime
import decimal

from conftest import CUSTOMERS_ROWS, ORDERS_ROWS

UTC = datetime.timezone.utc


def rows(client, sql):
    result = client.query(sql).result(timeout=120)
    return result, [dict(r.items()) for r in result]


def one(client, sql):
    _, listed = rows(client, sql)
    assert len(listed) == 1, listed
    return listed[0]


def field_type(result, name):
    return next(f.field_type for f in result.schema if f.name == name)


def test_integer_division_is_float(client):
    result, listed = rows(client, "SELECT 7/2 AS v, DIV(7, 2) AS d, MOD(7, 2) AS m")
    assert listed == [{"v": 3.5, "d": 3, "m": 1}]
    assert field_type(result, "v") in {"FLOAT", "FLOAT64"}
    assert field_type(result, "d") in {"INTEGER", "INT64"}


def test_safe_divide(client):
    row = one(client, "SELECT SAFE_DIVIDE(10, 4) AS a, SAFE_DIVIDE(1, 0) AS b, SAFE_DIVIDE(0, 0) AS c")
    assert row == {"a": 2.5, "b": None, "c": None}


def test_safe_divide_over_table(client):
    row = one(
        client,
        "SELECT SAFE_DIVIDE(SUM(amount), COUNT(*)) AS avg_amount, "
        "SAFE_DIVIDE(SUM(amount), COUNTIF(FALSE)) AS nothing FROM `demo.shop.orders`",
    )
    assert row["nothing"] is None
    avg = one(client, "SELECT AVG(amount) AS a FROM `demo.shop.orders`")["a"]
    assert abs(float(row["avg_amount"]) - float(avg)) < 1e-6


def test_countif_matches_where_count(client):
    row = one(
        client,
        "SELECT COUNTIF(amount > 100) AS big, COUNTIF(amount <= 100) AS small, "
        "COUNT(*) AS n FROM `demo.shop.orders`",
    )
    where = one(client, "SELECT COUNT(*) AS c FROM `demo.shop.orders` WHERE amount > 100")
    assert row["big"] == where["c"]
    assert row["big"] + row["small"] == row["n"] == ORDERS_ROWS


def test_ifnull(client):
    assert one(client, "SELECT IFNULL(NULL, 5) AS a, IFNULL(3, 5) AS b") == {"a": 5, "b": 3}
    row = one(
        client,
        "SELECT COUNTIF(address.city IS NULL) AS nulls, "
        "COUNTIF(IFNULL(address.city, '<none>') = '<none>') AS replaced, "
        "COUNTIF(IFNULL(address.city, '<none>') IS NULL) AS still_null "
        "FROM `demo.shop.customers`",
    )
    assert row["nulls"] > 0
    assert row["replaced"] == row["nulls"]
    assert row["still_null"] == 0


def test_date_trunc_month(client):
    result, listed = rows(
        client,
        "SELECT DATE_TRUNC(order_date, MONTH) AS month, COUNT(*) AS n "
        "FROM `demo.shop.orders` GROUP BY month ORDER BY month",
    )
    assert field_type(result, "month") == "DATE"
    assert len(listed) >= 2
    for r in listed:
        assert type(r["month"]) is datetime.date
        assert r["month"].day == 1
    assert sum(r["n"] for r in listed) == ORDERS_ROWS
    months = [r["month"] for r in listed]
    assert months == sorted(set(months))
    literal = one(client, "SELECT DATE_TRUNC(DATE '2024-03-15', MONTH) AS m")
    assert literal["m"] == datetime.date(2024, 3, 1)


def test_format_date(client):
    row = one(
        client,
        "SELECT FORMAT_DATE('%Y-%m', DATE '2024-03-05') AS ym, "
        "FORMAT_DATE('%Y%m%d', DATE '2024-03-05') AS compact",
    )
    assert row == {"ym": "2024-03", "compact": "20240305"}
    check = one(
        client,
        "SELECT COUNTIF(FORMAT_DATE('%Y-%m', order_date) != SUBSTR(CAST(order_date AS STRING), 1, 7)) AS bad "
        "FROM `demo.shop.orders`",
    )
    assert check["bad"] == 0


def test_extract(client):
    row = one(
        client,
        "SELECT EXTRACT(YEAR FROM DATE '2024-03-17') AS y, "
        "EXTRACT(MONTH FROM DATE '2024-03-17') AS m, "
        "EXTRACT(DAYOFWEEK FROM DATE '2024-03-17') AS dow, "
        "EXTRACT(HOUR FROM TIMESTAMP '2024-03-17 21:10:00+00') AS h",
    )
    # BigQuery's DAYOFWEEK runs 1 (Sunday) .. 7 (Saturday); 2024-03-17 is a Sunday.
    assert row == {"y": 2024, "m": 3, "dow": 1, "h": 21}
    years = one(
        client,
        "SELECT COUNTIF(EXTRACT(YEAR FROM order_date) < 1900) AS bad, "
        "COUNT(DISTINCT EXTRACT(YEAR FROM order_date)) AS years FROM `demo.shop.orders`",
    )
    assert years["bad"] == 0
    assert years["years"] >= 1


def test_date_add_sub_interval(client):
    result, listed = rows(
        client,
        "SELECT DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH) AS a, "
        "DATE_SUB(DATE '2024-03-01', INTERVAL 1 DAY) AS b, "
        "DATE_ADD(DATE '2024-02-29', INTERVAL 1 YEAR) AS c, "
        "DATE_SUB(DATE '2024-01-10', INTERVAL 2 WEEK) AS d",
    )
    assert listed == [
        {
            "a": datetime.date(2024, 2, 29),
            "b": datetime.date(2024, 2, 29),
            "c": datetime.date(2025, 2, 28),
            "d": datetime.date(2023, 12, 27),
        }
    ]
    assert field_type(result, "a") == "DATE"
    recent = one(
        client,
        "SELECT COUNTIF(order_date >= DATE_SUB(max_d, INTERVAL 30 DAY)) AS recent, COUNT(*) AS n "
        "FROM `demo.shop.orders`, (SELECT MAX(order_date) AS max_d FROM `demo.shop.orders`)",
    )
    assert 0 < recent["recent"] <= recent["n"]


def test_timestamp_trunc(client):
    result, listed = rows(
        client,
        "SELECT TIMESTAMP_TRUNC(TIMESTAMP '2024-03-15 13:45:30.5+00', HOUR) AS h, "
        "TIMESTAMP_TRUNC(TIMESTAMP '2024-03-15 13:45:30.5+00', DAY) AS d",
    )
    assert listed == [
        {
            "h": datetime.datetime(2024, 3, 15, 13, 0, tzinfo=UTC),
            "d": datetime.datetime(2024, 3, 15, 0, 0, tzinfo=UTC),
        }
    ]
    assert field_type(result, "h") == "TIMESTAMP"
    per_day = one(
        client,
        "SELECT COUNT(DISTINCT TIMESTAMP_TRUNC(created_at, DAY)) AS days, "
        "COUNT(DISTINCT DATE(created_at)) AS dates FROM `demo.shop.orders`",
    )
    assert per_day["days"] == per_day["dates"] > 0


def test_array_agg(client):
    result, listed = rows(
        client,
        "SELECT ARRAY_AGG(customer_id ORDER BY customer_id) AS ids "
        "FROM `demo.shop.customers` WHERE customer_id <= 5",
    )
    assert listed == [{"ids": [1, 2, 3, 4, 5]}]
    assert next(f for f in result.schema if f.name == "ids").mode == "REPEATED"


def test_array_agg_with_limit(client):
    _, listed = rows(
        client,
        "SELECT ARRAY_AGG(customer_id ORDER BY customer_id LIMIT 3) AS first3, "
        "ARRAY_AGG(customer_id ORDER BY customer_id DESC LIMIT 2) AS last2 "
        "FROM `demo.shop.customers`",
    )
    assert listed == [{"first3": [1, 2, 3], "last2": [CUSTOMERS_ROWS, CUSTOMERS_ROWS - 1]}]


def test_array_agg_per_group_matches_counts(client):
    _, grouped = rows(
        client,
        "SELECT customer_id, ARRAY_AGG(order_id ORDER BY order_id) AS ids "
        "FROM `demo.shop.orders` WHERE customer_id <= 20 GROUP BY customer_id ORDER BY customer_id",
    )
    _, counted = rows(
        client,
        "SELECT customer_id, COUNT(*) AS n FROM `demo.shop.orders` "
        "WHERE customer_id <= 20 GROUP BY customer_id ORDER BY customer_id",
    )
    assert [(g["customer_id"], len(g["ids"])) for g in grouped] == [
        (c["customer_id"], c["n"]) for c in counted
    ]
    for g in grouped:
        assert g["ids"] == sorted(g["ids"])


def test_struct(client):
    result, listed = rows(client, "SELECT STRUCT(1 AS a, 'x' AS b, [1, 2] AS c) AS s")
    assert listed == [{"s": {"a": 1, "b": "x", "c": [1, 2]}}]
    assert field_type(result, "s") in {"RECORD", "STRUCT"}


def test_struct_field_access(client):
    row = one(
        client,
        "SELECT STRUCT(customer_id AS id, address.city AS city).id AS sid "
        "FROM `demo.shop.customers` WHERE customer_id = 9",
    )
    assert row == {"sid": 9}


def test_record_field_access(client):
    row = one(
        client,
        "SELECT address.city AS city, address AS a FROM `demo.shop.customers` WHERE customer_id = 11",
    )
    assert row["city"] == row["a"]["city"]


def test_unnest_literal_array(client):
    assert one(client, "SELECT SUM(x) AS s FROM UNNEST([1, 2, 3]) AS x") == {"s": 6}


def test_unnest_repeated_column(client):
    exploded = one(
        client, "SELECT COUNT(*) AS n FROM `demo.shop.customers`, UNNEST(tags) AS tag"
    )
    lengths = one(client, "SELECT SUM(ARRAY_LENGTH(tags)) AS n FROM `demo.shop.customers`")
    assert exploded["n"] == lengths["n"]


def test_unnest_with_offset(client):
    with_offset = one(
        client,
        "SELECT ARRAY_AGG(CONCAT(CAST(off AS STRING), ':', v) ORDER BY off) AS s "
        "FROM UNNEST(['a', 'b', 'c']) AS v WITH OFFSET AS off",
    )
    assert with_offset["s"] == ["0:a", "1:b", "2:c"]


def test_in_unnest_literal_array(client):
    row = one(
        client,
        "SELECT COUNT(*) AS n FROM `demo.shop.customers` WHERE customer_id IN UNNEST([1, 2, 3, 99999])",
    )
    assert row == {"n": 3}


def test_qualify(client):
    _, latest = rows(
        client,
        "SELECT customer_id, order_id FROM `demo.shop.orders` WHERE customer_id <= 50 "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY order_id DESC) = 1 "
        "ORDER BY customer_id",
    )
    _, maxes = rows(
        client,
        "SELECT customer_id, MAX(order_id) AS order_id FROM `demo.shop.orders` "
        "WHERE customer_id <= 50 GROUP BY customer_id ORDER BY customer_id",
    )
    assert latest == maxes
    assert len(latest) > 0


def test_select_star_except(client):
    result, listed = rows(
        client,
        "SELECT * EXCEPT (ssn, card_number, email) FROM `demo.shop.customers` WHERE customer_id = 1",
    )
    names = [f.name for f in result.schema]
    assert "ssn" not in names and "card_number" not in names and "email" not in names
    assert names[0] == "customer_id"
    assert {"name", "address", "tags", "lifetime_value"} <= set(names)
    assert listed[0]["customer_id"] == 1


def test_select_star_replace(client):
    result, listed = rows(
        client,
        "SELECT * REPLACE (UPPER(name) AS name, customer_id * 10 AS customer_id) "
        "FROM `demo.shop.customers` WHERE customer_id = 2",
    )
    plain = one(client, "SELECT name FROM `demo.shop.customers` WHERE customer_id = 2")
    assert listed[0]["name"] == plain["name"].upper()
    assert listed[0]["customer_id"] == 20
    names = [f.name for f in result.schema]
    assert names.index("customer_id") == 0
    assert names.count("name") == 1


def test_window_functions(client):
    _, listed = rows(
        client,
        "SELECT order_id, amount, "
        "SUM(amount) OVER (ORDER BY order_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running, "
        "RANK() OVER (ORDER BY order_id) AS rk, "
        "LAG(order_id) OVER (ORDER BY order_id) AS prev "
        "FROM `demo.shop.orders` WHERE customer_id = 1 ORDER BY order_id",
    )
    assert listed
    running = decimal.Decimal(0)
    prev = None
    for i, r in enumerate(listed, start=1):
        running += r["amount"]
        assert r["running"] == running
        assert r["rk"] == i
        assert r["prev"] == prev
        prev = r["order_id"]
    total = one(client, "SELECT SUM(amount) AS s FROM `demo.shop.orders` WHERE customer_id = 1")
    assert listed[-1]["running"] == total["s"]


def test_cte(client):
    row = one(
        client,
        "WITH per_customer AS ("
        "  SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total FROM `demo.shop.orders` GROUP BY customer_id"
        "), ranked AS ("
        "  SELECT *, ROW_NUMBER() OVER (ORDER BY total DESC, customer_id) AS pos FROM per_customer"
        ") "
        "SELECT SUM(n) AS orders, COUNT(*) AS customers, COUNTIF(pos = 1) AS top FROM ranked",
    )
    distinct = one(client, "SELECT COUNT(DISTINCT customer_id) AS c FROM `demo.shop.orders`")
    assert row["orders"] == ORDERS_ROWS
    assert row["customers"] == distinct["c"]
    assert row["top"] == 1


def test_join_customers_orders(client):
    row = one(
        client,
        "SELECT COUNT(*) AS n FROM `demo.shop.orders` o "
        "JOIN `demo.shop.customers` c ON o.customer_id = c.customer_id",
    )
    matched = one(
        client,
        "SELECT COUNTIF(customer_id BETWEEN 1 AND 10000) AS n FROM `demo.shop.orders`",
    )
    assert row["n"] == matched["n"]


def test_string_functions(client):
    row = one(
        client,
        "SELECT CONCAT('a', 'b', 'c') AS c, LOWER('AbC') AS l, LENGTH('héllo') AS n, "
        "SPLIT('a,b,c', ',') AS parts, STARTS_WITH('sluice', 'slu') AS sw",
    )
    assert row == {"c": "abc", "l": "abc", "n": 5, "parts": ["a", "b", "c"], "sw": True}


def test_regexp_with_raw_string(client):
    row = one(
        client,
        "SELECT REGEXP_CONTAINS('order-123', r'\\d+') AS rx, "
        "REGEXP_EXTRACT('order-123', r'(\\d+)') AS digits",
    )
    assert row == {"rx": True, "digits": "123"}


def test_cast_and_safe_cast(client):
    row = one(
        client,
        "SELECT CAST('42' AS INT64) AS i, SAFE_CAST('x' AS INT64) AS bad, "
        "CAST(1.25 AS NUMERIC) AS num, CAST('2024-02-29' AS DATE) AS d",
    )
    assert row == {"i": 42, "bad": None, "num": decimal.Decimal("1.25"), "d": datetime.date(2024, 2, 29)}
