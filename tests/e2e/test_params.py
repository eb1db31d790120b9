"""Query parameters of every type, named and positional."""

import datetime
import decimal

import pytest
from google.cloud import bigquery
from google.cloud.bigquery import (
    ArrayQueryParameter,
    QueryJobConfig,
    ScalarQueryParameter,
    StructQueryParameter,
)

UTC = datetime.timezone.utc

SCALAR_CASES = [
    ("INT64", 42),
    ("INT64", -9_007_199_254_740_993),  # beyond a double's exact range
    ("FLOAT64", 2.5),
    ("FLOAT64", -1.0e-7),
    ("NUMERIC", decimal.Decimal("12345.678901234")),
    ("BIGNUMERIC", decimal.Decimal("123456789012345678901234567890.12345678901234567890")),
    ("BOOL", True),
    ("BOOL", False),
    ("STRING", "héllo, 'world' \"quoted\" 😀"),
    ("BYTES", b"\x00\x01binary\xff"),
    ("DATE", datetime.date(2024, 2, 29)),
    ("DATETIME", datetime.datetime(2024, 3, 15, 13, 45, 30, 123456)),
    ("TIME", datetime.time(23, 59, 58, 500000)),
    ("TIMESTAMP", datetime.datetime(2024, 3, 15, 13, 45, 30, 654321, tzinfo=UTC)),
]

RESULT_TYPES = {
    "INT64": {"INTEGER", "INT64"},
    "FLOAT64": {"FLOAT", "FLOAT64"},
    "NUMERIC": {"NUMERIC"},
    "BIGNUMERIC": {"BIGNUMERIC"},
    "BOOL": {"BOOLEAN", "BOOL"},
    "STRING": {"STRING"},
    "BYTES": {"BYTES"},
    "DATE": {"DATE"},
    "DATETIME": {"DATETIME"},
    "TIME": {"TIME"},
    "TIMESTAMP": {"TIMESTAMP"},
}


def run(client, sql, params, via="job"):
    config = QueryJobConfig(query_parameters=params)
    if via == "job":
        return client.query(sql, job_config=config).result(timeout=120)
    return client.query_and_wait(sql, job_config=config, wait_timeout=120)


def _ids(cases):
    return [f"{t}-{i}" for i, (t, _) in enumerate(cases)]


@pytest.mark.parametrize(("type_", "value"), SCALAR_CASES, ids=_ids(SCALAR_CASES))
def test_named_scalar_round_trip(client, type_, value):
    result = run(client, "SELECT @p AS v", [ScalarQueryParameter("p", type_, value)])
    rows = list(result)
    assert len(rows) == 1
    got = rows[0]["v"]
    assert got == value
    assert type(got) is type(value)
    assert result.schema[0].field_type in RESULT_TYPES[type_]


@pytest.mark.parametrize(("type_", "value"), SCALAR_CASES, ids=_ids(SCALAR_CASES))
def test_positional_scalar_round_trip(client, type_, value):
    rows = list(
        run(client, "SELECT ? AS v", [ScalarQueryParameter(None, type_, value)], via="query")
    )
    assert rows[0]["v"] == value
    assert type(rows[0]["v"]) is type(value)


def test_timestamp_parameter_in_other_zone_is_same_instant(client):
    eastern = datetime.timezone(datetime.timedelta(hours=-5))
    value = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=eastern)
    rows = list(run(client, "SELECT @ts AS v", [ScalarQueryParameter("ts", "TIMESTAMP", value)]))
    assert rows[0]["v"] == value
    assert rows[0]["v"] == datetime.datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC)


def test_parameter_filters_rows(client):
    rows = list(
        run(
            client,
            "SELECT customer_id, name FROM `demo.shop.customers` WHERE customer_id = @id",
            [ScalarQueryParameter("id", "INT64", 4242)],
        )
    )
    assert [r["customer_id"] for r in rows] == [4242]
    # the same customer fetched without a parameter
    literal = list(
        client.query_and_wait(
            "SELECT name FROM `demo.shop.customers` WHERE customer_id = 4242", wait_timeout=120
        )
    )
    assert rows[0]["name"] == literal[0]["name"]


def test_several_named_parameters(client):
    rows = list(
        run(
            client,
            "SELECT COUNT(*) AS n FROM `demo.shop.customers` "
            "WHERE customer_id BETWEEN @lo AND @hi",
            [ScalarQueryParameter("lo", "INT64", 101), ScalarQueryParameter("hi", "INT64", 200)],
            via="query",
        )
    )
    assert rows[0]["n"] == 100


def test_positional_parameters_in_order(client):
    rows = list(
        run(
            client,
            "SELECT ? - ? AS diff, CONCAT(?, ?) AS s",
            [
                ScalarQueryParameter(None, "INT64", 10),
                ScalarQueryParameter(None, "INT64", 3),
                ScalarQueryParameter(None, "STRING", "ab"),
                ScalarQueryParameter(None, "STRING", "cd"),
            ],
        )
    )
    assert rows[0]["diff"] == 7
    assert rows[0]["s"] == "abcd"


def test_array_int64_parameter_in_unnest(client):
    ids = [3, 14, 159, 2653]
    rows = list(
        run(
            client,
            "SELECT customer_id FROM `demo.shop.customers` "
            "WHERE customer_id IN UNNEST(@ids) ORDER BY customer_id",
            [ArrayQueryParameter("ids", "INT64", ids)],
        )
    )
    assert [r["customer_id"] for r in rows] == sorted(ids)


def test_array_string_parameter(client):
    names = list(
        client.query_and_wait(
            "SELECT name FROM `demo.shop.customers` WHERE customer_id IN (5, 6)", wait_timeout=120
        )
    )
    wanted = [r["name"] for r in names]
    rows = list(
        run(
            client,
            "SELECT COUNT(*) AS n FROM `demo.shop.customers` WHERE name IN UNNEST(@names)",
            [ArrayQueryParameter("names", "STRING", wanted)],
            via="query",
        )
    )
    assert rows[0]["n"] >= 2


def test_array_parameter_round_trip(client):
    result = run(
        client,
        "SELECT @a AS a, ARRAY_LENGTH(@a) AS n",
        [ArrayQueryParameter("a", "STRING", ["x", "y", "z"])],
    )
    rows = list(result)
    assert rows[0]["a"] == ["x", "y", "z"]
    assert rows[0]["n"] == 3
    assert result.schema[0].mode == "REPEATED"


def test_empty_array_parameter(client):
    rows = list(
        run(
            client,
            "SELECT COUNT(*) AS n FROM `demo.shop.customers` WHERE customer_id IN UNNEST(@ids)",
            [ArrayQueryParameter("ids", "INT64", [])],
        )
    )
    assert rows[0]["n"] == 0


def _struct_param():
    return StructQueryParameter(
        "s",
        ScalarQueryParameter("x", "INT64", 7),
        ScalarQueryParameter("y", "STRING", "seven"),
        ScalarQueryParameter("d", "DATE", datetime.date(2020, 1, 15)),
    )


def test_struct_parameter_field_access(client):
    rows = list(run(client, "SELECT @s.x AS x, @s.y AS y", [_struct_param()]))
    assert rows[0]["x"] == 7
    assert rows[0]["y"] == "seven"


def test_struct_parameter_round_trip(client):
    result = run(client, "SELECT @s AS s", [_struct_param()], via="query")
    rows = list(result)
    assert rows[0]["s"] == {"x": 7, "y": "seven", "d": datetime.date(2020, 1, 15)}
    assert result.schema[0].field_type in {"RECORD", "STRUCT"}


@pytest.mark.parametrize("type_", ["INT64", "STRING", "DATE", "TIMESTAMP", "NUMERIC", "BOOL"])
def test_null_parameter(client, type_):
    rows = list(
        run(
            client,
            "SELECT @p AS v, @p IS NULL AS is_null",
            [ScalarQueryParameter("p", type_, None)],
        )
    )
    assert rows[0]["v"] is None
    assert rows[0]["is_null"] is True


def test_null_parameter_in_filter_matches_nothing(client):
    rows = list(
        run(
            client,
            "SELECT COUNT(*) AS n FROM `demo.shop.customers` WHERE customer_id = @id",
            [ScalarQueryParameter("id", "INT64", None)],
        )
    )
    assert rows[0]["n"] == 0


def test_date_parameter_filters_orders(client):
    day = list(
        client.query_and_wait(
            "SELECT order_date FROM `demo.shop.orders` WHERE order_id = "
            "(SELECT MIN(order_id) FROM `demo.shop.orders`)",
            wait_timeout=120,
        )
    )[0]["order_date"]
    expected = list(
        client.query_and_wait(
            f"SELECT COUNT(*) AS n FROM `demo.shop.orders` WHERE order_date = DATE '{day.isoformat()}'",
            wait_timeout=120,
        )
    )[0]["n"]
    rows = list(
        run(
            client,
            "SELECT COUNT(*) AS n FROM `demo.shop.orders` WHERE order_date = @d",
            [ScalarQueryParameter("d", bigquery.SqlParameterScalarTypes.DATE, day)],
        )
    )
    assert expected >= 1
    assert rows[0]["n"] == expected
