"""Column masking seen through the official client.

The demo configuration masks the sensitive columns of demo.shop.customers for
agents and exempts `admins`. The exempt administrator's reads are the ground
truth: every raw sensitive value, and the simple transforms of each an agent
could ask the warehouse for (digits only, reversed, upper and lower case,
base64 and hex of its bytes, MD5/SHA-1/SHA-256/SHA-512), must never come back
to an agent, in rows or in error text. The evasion corpus
(masking_corpus.yaml) is replayed case by case, then the user-facing read
paths (`query().result()`, `query_and_wait()`, `to_dataframe()`,
`to_arrow()`, `list_rows()`) are checked value by value.
"""

from __future__ import annotations

import base64
import os
import subprocess
import collections
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2.credentials import Credentials

from conftest import CUSTOMERS_ROWS, UPSTREAM, agent_token, make_client
from test_approvals import private_gateway  # noqa: F401 (a fixture)

HERE = Path(__file__).resolve().parent
CORPUS_PATH = HERE / "masking_corpus.yaml"
CUSTOMERS = "demo.shop.customers"
TIMEOUT_S = 120

CASE_KEYS = {"name", "sql", "expect", "rule", "error", "embedded_only", "upstream_only"}
OUTCOMES = {"masked", "refused", "allowed"}
MIN_CASES = 70
WRITES = re.compile(r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?TABLE|INSERT|UPDATE|DELETE|MERGE)\b", re.I)

# Shapes of the demo's raw values (crates/sluice-embedded/src/demo/names.rs).
SSN_RE = re.compile(r"^9\d\d-\d\d-\d{4}$")
CARD_RE = re.compile(r"^\d{16}$")
EMAIL_RE = re.compile(r"^[a-z]+\.[a-z]+\.\d+@example\.(com|org)$")
PHONE_RE = re.compile(r"^\+1-555-01\d\d$")
ZIP_RE = re.compile(r"^\d{5}$")


def _load_corpus() -> list[dict]:
    return yaml.safe_load(CORPUS_PATH.read_text())["cases"]


CORPUS = _load_corpus()


# --- the leak checker --------------------------------------------------------

MIN_FORBIDDEN = 6  # shorter strings would match ordinary output by chance
DIGIT_COLUMNS = {"ssn", "card_number", "phone"}


def forbidden_forms(value: str, column: str) -> dict[str, str]:
    """The strings an agent must never see for one raw value: the value and
    the transforms a query could apply to it."""
    data = value.encode()
    forms = {
        "raw": value,
        "upper case": value.upper(),
        "lower case": value.lower(),
        "reversed": value[::-1],
        # TO_BASE64 pads; a prefix without the padding matches both.
        "base64": base64.b64encode(data).decode().rstrip("="),
        "hex": data.hex(),
        "upper-case hex": data.hex().upper(),
    }
    for algorithm in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(algorithm, data).digest()
        forms[f"{algorithm} hex"] = digest.hex()
        forms[f"{algorithm} base64"] = base64.b64encode(digest).decode().rstrip("=")
    if column in DIGIT_COLUMNS:
        digits = re.sub(r"\D", "", value)
        forms["digits"] = digits
        forms["digits reversed"] = digits[::-1]
    if column == "email":
        # `*****@domain` keeps the domain; the local part is the secret.
        local = value.split("@", 1)[0]
        forms["local part"] = local
        forms["upper-case local part"] = local.upper()
    return {form: s for form, s in forms.items() if len(s) >= MIN_FORBIDDEN}


class LeakChecker:
    """Finds any forbidden string inside a text, indexed by prefix so a
    whole table's worth of text is scanned in a few seconds."""

    def __init__(self):
        self._by_prefix: dict[str, list[str]] = collections.defaultdict(list)
        self._origin: dict[str, str] = {}

    def add(self, value: str | None, column: str, customer_id: int) -> None:
        if value is None or len(value) < MIN_FORBIDDEN:
            return
        for form, s in forbidden_forms(value, column).items():
            if s not in self._origin:
                self._origin[s] = f"{column} of customer {customer_id} ({form})"
                self._by_prefix[s[:MIN_FORBIDDEN]].append(s)

    def __len__(self) -> int:
        return len(self._origin)

    def find(self, text: str) -> tuple[str, str] | None:
        """(forbidden string, where it comes from) of the first hit, or None."""
        k = MIN_FORBIDDEN
        index = self._by_prefix
        for i in range(len(text) - k + 1):
            candidates = index.get(text[i : i + k])
            if candidates:
                for s in candidates:
                    if text.startswith(s, i):
                        return s, self._origin[s]
        return None

    def assert_clean(self, texts: list[str], what: str) -> None:
        for text in texts:
            hit = self.find(text)
            if hit:
                s, origin = hit
                at = text.find(s)
                excerpt = text[max(0, at - 60) : at + len(s) + 60]
                pytest.fail(f"{what}: leaks the {origin}: {s!r} in …{excerpt}…")


# --- rendering what came back ------------------------------------------------


def plain(value):
    """A client value as JSON-able data; BYTES as their text, hex and base64."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        return {
            "bytes": base64.b64encode(data).decode(),
            "hex": data.hex(),
            "text": data.decode("utf-8", "replace"),
        }
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # Decimal, date, datetime, time


def row_dicts(rows) -> list[dict]:
    return [dict(row.items()) for row in rows]


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield value


def _code_points(leaves) -> str:
    """Integers read as code points (ASCII() or UNICODE() of each character),
    anything else as a break."""
    return "".join(
        chr(v) if isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 0x10FFFF else "\0"
        for v in leaves
    )


def _strings(leaves) -> list[str]:
    """The STRING (and BYTES) cells among a row's values; numbers and dates
    are left out, so that an order id next to an amount is never read as
    the digits of an SSN."""
    out = []
    for v in leaves:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (bytes, bytearray)):
            out.append(bytes(v).decode("utf-8", "replace"))
    return out


def result_texts(rows: list[dict]) -> list[str]:
    """Every text a result gives an attacker to read: the rows themselves
    (as the client returned them, BYTES also as hex and base64), and values
    reassembled from pieces: each row's strings run together (SUBSTR pieces
    in separate columns), its integers read as characters (ASCII() per
    character), and the strings of all rows run together (one character per
    row)."""
    texts = [json.dumps([plain(r) for r in rows], ensure_ascii=False, default=str)]
    all_strings, all_leaves = [], []
    for row in rows:
        leaves = list(_leaves(row))
        strings = _strings(leaves)
        all_leaves += leaves
        all_strings += strings
        texts += ["".join(strings), "-".join(strings), _code_points(leaves)]
    texts += ["".join(all_strings), _code_points(all_leaves)]
    return texts


def error_texts(error: Exception | None, job) -> list[str]:
    texts = []
    if error is not None:
        texts.append(str(error))
        texts.append(json.dumps(getattr(error, "errors", None), default=str))
    if job is not None:
        texts.append(json.dumps([job.error_result, job.errors], default=str))
    return texts


@dataclass
class Outcome:
    rows: list[dict] | None
    error: Exception | None
    texts: list[str]


def run(client, sql: str) -> Outcome:
    """Runs `sql` as jobs.insert + getQueryResults and keeps all that came
    back: rows, the error, and the job's own errors as jobs.get reports them."""
    job = None
    try:
        job = client.query(sql)
        rows = row_dicts(job.result(timeout=TIMEOUT_S))
        return Outcome([plain(r) for r in rows], None, result_texts(rows) + error_texts(None, job))
    except exceptions.GoogleAPICallError as exc:
        texts = error_texts(exc, job)
        if job is not None:
            try:
                texts += error_texts(None, client.get_job(job.job_id, location=job.location, timeout=30))
            except exceptions.GoogleAPICallError as get_exc:
                texts.append(str(get_exc))
        return Outcome(None, exc, texts)


def canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:800]


# --- ground truth -------------------------------------------------------------


@dataclass
class Customer:
    customer_id: int
    name: str
    ssn: str
    card_number: str
    email: str
    phone: str | None
    address: dict | None


@pytest.fixture(scope="session")
def truth(admin_client) -> dict[int, Customer]:
    """Every customer's raw values, read by the exempt administrator."""
    rows = admin_client.query(
        f"SELECT customer_id, name, ssn, card_number, email, phone, address FROM `{CUSTOMERS}` "
        "ORDER BY customer_id"
    ).result(timeout=TIMEOUT_S)
    customers = {r["customer_id"]: Customer(**dict(r.items())) for r in rows}
    assert len(customers) == CUSTOMERS_ROWS
    # Masked ground truth would make every leak check below pass vacuously.
    for c in customers.values():
        assert SSN_RE.match(c.ssn), f"the exempt administrator got a masked ssn: {c.ssn!r}"
        assert CARD_RE.match(c.card_number), f"masked card_number for admins: {c.card_number!r}"
        assert EMAIL_RE.match(c.email), f"masked email for admins: {c.email!r}"
        assert c.phone is None or PHONE_RE.match(c.phone), f"masked phone for admins: {c.phone!r}"
        if c.address is not None:
            assert not c.address["street"].startswith("[REDACTED"), c.address
            assert ZIP_RE.match(c.address["zip"]), f"masked zip for admins: {c.address!r}"
    return customers


@pytest.fixture(scope="session")
def leaks(truth) -> LeakChecker:
    checker = LeakChecker()
    for c in truth.values():
        checker.add(c.ssn, "ssn", c.customer_id)
        checker.add(c.card_number, "card_number", c.customer_id)
        checker.add(c.email, "email", c.customer_id)
        checker.add(c.phone, "phone", c.customer_id)
        if c.address is not None:
            # ZIP codes are five digits: too short to look for, and their
            # first two characters are shown by design.
            checker.add(c.address["street"], "address.street", c.customer_id)
    return checker


# --- the corpus ---------------------------------------------------------------


def test_corpus_is_well_formed():
    names = [case.get("name") for case in CORPUS]
    assert len(names) >= MIN_CASES, f"{len(names)} cases, want at least {MIN_CASES}"
    duplicates = [n for n, k in collections.Counter(names).items() if k > 1]
    assert not duplicates, f"duplicate case names: {duplicates}"
    for case in CORPUS:
        name = case.get("name")
        assert isinstance(name, str) and re.fullmatch(r"[a-z0-9_]+", name), case
        assert set(case) <= CASE_KEYS, f"{name}: unknown keys {set(case) - CASE_KEYS}"
        assert isinstance(case.get("sql"), str) and case["sql"].strip(), name
        assert case.get("expect") in OUTCOMES, f"{name}: expect must be one of {OUTCOMES}"
        if "rule" in case:
            assert case["expect"] == "refused", f"{name}: only a refused case names a rule"
        if "error" in case:
            assert case["expect"] == "masked", f"{name}: only a masked case expects an error"
        assert not ("embedded_only" in case and "upstream_only" in case), f"{name}: runs nowhere"
    outcomes = collections.Counter(case["expect"] for case in CORPUS)
    assert all(outcomes[o] for o in OUTCOMES), outcomes


def _corpus_params():
    params = []
    for case in CORPUS:
        marks = []
        if case.get("embedded_only"):
            marks.append(
                pytest.mark.skipif(UPSTREAM == "bqemulator", reason=f"against bqemulator: {case['embedded_only']}")
            )
        if case.get("upstream_only"):
            marks.append(
                pytest.mark.skipif(UPSTREAM != "bqemulator", reason=f"embedded warehouse: {case['upstream_only']}")
            )
        if WRITES.match(case["sql"]):
            marks.append(pytest.mark.destructive)
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


@pytest.mark.parametrize("case", _corpus_params())
def test_corpus_case(client, admin_client, leaks, case):
    name, sql, expect = case["name"], case["sql"], case["expect"]
    got = run(client, sql)
    # Whatever the outcome, nothing that came back may carry a raw value.
    leaks.assert_clean(got.texts, f"{name} ({expect})")

    if expect == "refused":
        assert got.error is not None, f"{name}: ran and returned {len(got.rows)} rows instead of being refused"
        assert isinstance(got.error, exceptions.Forbidden), f"{name}: not a refusal: {describe(got.error)}"
        reasons = [e.get("reason") for e in got.error.errors or []]
        assert "accessDenied" in reasons, f"{name}: reasons {reasons}: {describe(got.error)}"
        if case.get("rule"):
            assert case["rule"] in str(got.error), f"{name}: refusal does not name {case['rule']}: {describe(got.error)}"
        return

    if case.get("error"):
        assert got.error is not None, f"{name}: expected the warehouse to fail it ({case['error']}), got rows"
        return

    assert got.error is None, f"{name}: expected rows ({expect}), got {describe(got.error)}"
    assert got.rows, f"{name}: no rows came back; the case proves nothing"
    admin = run(admin_client, sql)
    assert admin.error is None, f"{name}: the exempt administrator's run failed: {describe(admin.error)}"
    if expect == "masked":
        assert canonical(got.rows) != canonical(admin.rows), (
            f"{name}: the agent got exactly what the exempt administrator got; nothing was masked"
        )
    else:
        assert canonical(got.rows) == canonical(admin.rows), (
            f"{name}: masking changed an ordinary result\n agent: {got.rows[:3]}\n admin: {admin.rows[:3]}"
        )


# --- the checker itself --------------------------------------------------------


def test_demo_data_has_values_to_find(truth, leaks):
    """The checker is only as good as the ground truth: every sensitive
    column has distinct raw values, each with its forbidden forms."""
    counts = {
        "ssn": len({c.ssn for c in truth.values()}),
        "card_number": len({c.card_number for c in truth.values()}),
        "email": len({c.email for c in truth.values()}),
        "phone": len({c.phone for c in truth.values() if c.phone}),
        "address.street": len({c.address["street"] for c in truth.values() if c.address}),
    }
    print(f"distinct raw values: {counts}; forbidden strings: {len(leaks)}")
    assert counts["ssn"] > 9_000 and counts["card_number"] > 9_000 and counts["email"] == CUSTOMERS_ROWS
    assert counts["phone"] >= 50 and counts["address.street"] > 5_000
    assert len(leaks) > 10 * CUSTOMERS_ROWS


def test_leak_checker_finds_each_transform(truth, leaks):
    sample = [truth[i] for i in (1, 2, 3, 1234, CUSTOMERS_ROWS)]
    for c in sample:
        for column, value in [("ssn", c.ssn), ("card_number", c.card_number), ("email", c.email),
                              ("phone", c.phone), ("address.street", (c.address or {}).get("street"))]:
            if value is None:
                continue
            for form, s in forbidden_forms(value, column).items():
                text = f'[{{"x": "noise {s} more noise"}}]'
                assert leaks.find(text), f"{form} of {column} {value!r} not found in {text!r}"
    # Values reassembled from pieces.
    c = truth[1]
    pieces = [{"customer_id": 1, "a": c.ssn[:3], "b": c.ssn[4:6], "c": c.ssn[7:]}]
    assert any(leaks.find(t) for t in result_texts(pieces))
    codes = [dict({"customer_id": 1}, **{f"c{i}": ord(ch) for i, ch in enumerate(c.ssn)})]
    assert any(leaks.find(t) for t in result_texts(codes))
    chars = [{"ch": ch} for ch in c.email]
    assert any(leaks.find(t) for t in result_texts(chars))
    hashed = [{"h": hashlib.sha256(c.ssn.encode()).digest()}]
    assert any(leaks.find(t) for t in result_texts(hashed))


def test_leak_checker_passes_masked_and_ordinary_values(truth, leaks):
    """No false alarm on what masking shows by design (a card's last four,
    an e-mail domain, two ZIP digits) nor on the non-sensitive columns."""
    rows = []
    for c in truth.values():
        rows.append(
            {
                "customer_id": c.customer_id,
                "name": c.name,
                "ssn": "[REDACTED:us_ssn]",
                "card_number": "*" * 12 + c.card_number[-4:],
                "email": "*****@" + c.email.split("@", 1)[1],
                "phone": None if c.phone is None else "[REDACTED:phone]",
                "address": None
                if c.address is None
                else dict(c.address, street="[REDACTED:street]", zip=c.address["zip"][:2] + "***"),
            }
        )
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        for text in result_texts(chunk):
            assert leaks.find(text) is None, leaks.find(text)


# --- the user-facing read paths -------------------------------------------------


def expect_masked_customer(row: dict, raw: Customer) -> None:
    """One customer as an agent must see it: each column masked with its
    strategy, the rest as it is."""
    cid = raw.customer_id
    if "name" in row:
        assert row["name"] == raw.name, f"customer {cid}: name changed"
    if "ssn" in row:
        assert row["ssn"] == "[REDACTED:us_ssn]", f"customer {cid}: ssn {row['ssn']!r}"
    if "card_number" in row:
        want = "*" * (len(raw.card_number) - 4) + raw.card_number[-4:]
        assert row["card_number"] == want, f"customer {cid}: card_number {row['card_number']!r}"
    if "email" in row:
        want = "*****@" + raw.email.split("@", 1)[1]
        assert row["email"] == want, f"customer {cid}: email {row['email']!r}"
    if "phone" in row:
        want = None if raw.phone is None else "[REDACTED:phone]"
        assert row["phone"] == want, f"customer {cid}: phone {row['phone']!r}"
    if "address" in row:
        if raw.address is None:
            assert row["address"] is None, f"customer {cid}: address {row['address']!r}"
        else:
            got = row["address"]
            assert got["street"] == "[REDACTED:street]", f"customer {cid}: street {got['street']!r}"
            assert got["zip"] == raw.address["zip"][:2] + "***", f"customer {cid}: zip {got['zip']!r}"
            assert got["city"] == raw.address["city"] and got["state"] == raw.address["state"], got


SENSITIVE_SQL = (
    f"SELECT customer_id, name, ssn, card_number, email, phone, address FROM `{CUSTOMERS}` "
    "WHERE customer_id <= {n} ORDER BY customer_id"
)


def _check_masked_rows(rows: list[dict], truth, leaks, what: str, expected: int) -> None:
    assert len(rows) == expected, f"{what}: {len(rows)} rows"
    leaks.assert_clean(result_texts(rows), what)
    for row in rows:
        expect_masked_customer(row, truth[row["customer_id"]])


def test_query_result_masks_each_column_with_its_strategy(client, truth, leaks):
    rows = row_dicts(client.query(SENSITIVE_SQL.format(n=500)).result(timeout=TIMEOUT_S))
    _check_masked_rows(rows, truth, leaks, "query().result()", 500)


def test_query_and_wait_is_masked(client, truth, leaks):
    rows = row_dicts(client.query_and_wait(SENSITIVE_SQL.format(n=500), wait_timeout=TIMEOUT_S))
    _check_masked_rows(rows, truth, leaks, "query_and_wait()", 500)


def test_to_dataframe_is_masked(client, truth, leaks):
    df = client.query(SENSITIVE_SQL.format(n=2000)).to_dataframe()
    records = [{k: (None if v is None or v != v else v) for k, v in r.items()} for r in df.to_dict("records")]
    rows = [dict(r, customer_id=int(r["customer_id"])) for r in records]
    _check_masked_rows(rows, truth, leaks, "to_dataframe()", 2000)


def test_to_arrow_is_masked(client, truth, leaks):
    table = client.query(SENSITIVE_SQL.format(n=2000)).to_arrow(create_bqstorage_client=False)
    rows = table.to_pylist()
    _check_masked_rows(rows, truth, leaks, "to_arrow()", 2000)


def test_list_rows_masks_the_whole_table(client, truth, leaks):
    """tabledata.list, every page of it."""
    rows = row_dicts(client.list_rows(CUSTOMERS, page_size=2500, timeout=TIMEOUT_S))
    _check_masked_rows(rows, truth, leaks, "list_rows()", CUSTOMERS_ROWS)


def test_list_rows_selected_fields_is_masked(client, truth, leaks):
    fields = [bigquery.SchemaField("customer_id", "INTEGER"), bigquery.SchemaField("ssn", "STRING"),
              bigquery.SchemaField("card_number", "STRING"), bigquery.SchemaField("email", "STRING")]
    rows = row_dicts(client.list_rows(CUSTOMERS, selected_fields=fields, max_results=300, timeout=TIMEOUT_S))
    _check_masked_rows(rows, truth, leaks, "list_rows(selected_fields=…)", 300)


def test_derived_values_are_masked_whole(client):
    rows = row_dicts(
        client.query(
            f"SELECT customer_id, CONCAT(name, ' ', ssn) AS s, REPLACE(ssn, '-', '') AS d, "
            f"LENGTH(email) AS n, SAFE_CAST(REPLACE(ssn, '-', '') AS INT64) AS i, "
            f"STARTS_WITH(card_number, '4') AS b FROM `{CUSTOMERS}` WHERE customer_id <= 50"
        ).result(timeout=TIMEOUT_S)
    )
    assert len(rows) == 50
    for row in rows:
        assert row["s"].startswith("[REDACTED") and row["d"].startswith("[REDACTED"), row
        assert row["n"] is None and row["i"] is None and row["b"] is None, row


def test_exempt_administrator_sees_raw_values(admin_client, truth, leaks):
    """`admins` are exempt: raw values in query results and in
    tabledata.list, which the leak checker flags (so it does look)."""
    rows = row_dicts(admin_client.query(SENSITIVE_SQL.format(n=50)).result(timeout=TIMEOUT_S))
    listed = row_dicts(admin_client.list_rows(CUSTOMERS, max_results=50, timeout=TIMEOUT_S))
    for got in (rows, listed):
        assert len(got) == 50
        for row in got:
            raw = truth[row["customer_id"]]
            assert (row["ssn"], row["card_number"], row["email"], row["phone"]) == (
                raw.ssn, raw.card_number, raw.email, raw.phone,
            )
            assert row["address"] == raw.address
        assert leaks.find(json.dumps(got, default=str))


def test_counts_of_sensitive_columns_are_real(client, admin_client, truth):
    sql = (
        f"SELECT COUNT(DISTINCT ssn) AS ssns, COUNT(ssn) AS n, COUNT(DISTINCT email) AS emails "
        f"FROM `{CUSTOMERS}`"
    )
    agent = dict(list(client.query(sql).result(timeout=TIMEOUT_S))[0].items())
    admin = dict(list(admin_client.query(sql).result(timeout=TIMEOUT_S))[0].items())
    assert agent == admin
    assert agent == {
        "ssns": len({c.ssn for c in truth.values()}),
        "n": len(truth),
        "emails": len({c.email for c in truth.values()}),
    }


# --- keyed pseudonyms: equal values stay equal, so joins still match ------------

PSEUDONYM_RULES = """\
    - { column: demo.shop.customers.customer_id, strategy: pseudonym, class: customer, filters: allow }
    - { column: demo.shop.orders.customer_id, strategy: pseudonym, class: customer, filters: allow }
"""


def _with_pseudonyms(master_key: Path):
    def edit(text: str) -> str:
        text = text.replace("masking:\n  columns:\n", "masking:\n  columns:\n" + PSEUDONYM_RULES, 1)
        return text + f"\nsecrets:\n  master_key_file: {master_key}\n"

    return edit


@pytest.mark.skipif(UPSTREAM != "embedded", reason="runs a private gateway on the demo configuration")
def test_a_join_on_a_pseudonymized_key_still_matches(private_gateway, admin_client, tmp_path):
    master_key = tmp_path / "master.key"
    subprocess.run([os.environ["SLUICE_BIN"], "secrets", "init-key", "--out", str(master_key)], check=True,
                   capture_output=True)
    gateway = private_gateway("15m", _with_pseudonyms(master_key))
    server = gateway.server
    agent = make_client(server.base_url, Credentials(token=agent_token(server)))

    def rows(sql: str) -> list[dict]:
        return [dict(r.items()) for r in agent.query(sql).result(timeout=TIMEOUT_S)]

    customers = rows("SELECT customer_id, name FROM `demo.shop.customers` WHERE customer_id <= 30")
    orders = rows("SELECT customer_id, COUNT(*) AS n FROM `demo.shop.orders` "
                  "WHERE customer_id <= 30 GROUP BY customer_id")
    joined = rows("SELECT c.customer_id, c.name, COUNT(*) AS n FROM `demo.shop.customers` c "
                  "JOIN `demo.shop.orders` o ON c.customer_id = o.customer_id "
                  "WHERE c.customer_id <= 30 GROUP BY c.customer_id, c.name")
    raw = {r["customer_id"]: (r["name"], r["n"]) for r in admin_client.query(
        "SELECT c.customer_id, c.name, COUNT(*) AS n FROM `demo.shop.customers` c "
        "JOIN `demo.shop.orders` o ON c.customer_id = o.customer_id "
        "WHERE c.customer_id <= 30 GROUP BY c.customer_id, c.name").result(timeout=TIMEOUT_S)}
    assert raw, "the demo has customers with orders"

    # The ids are pseudonyms: integers, none of them a raw id.
    ids = [c["customer_id"] for c in customers]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert all(isinstance(i, int) and i > 30 for i in ids), ids
    # Joined by the client on pseudonyms, the two results match the raw join.
    name_of = {c["customer_id"]: c["name"] for c in customers}
    by_client = sorted((name_of[o["customer_id"]], o["n"]) for o in orders)
    assert by_client == sorted(raw.values())
    # Joined in the warehouse, the pseudonyms are the same ones.
    assert sorted((name_of[j["customer_id"]], j["n"]) for j in joined) == sorted(raw.values())
    # The key is kept: after a restart the pseudonyms are unchanged.
    gateway.restart()
    again = rows("SELECT customer_id, name FROM `demo.shop.customers` WHERE customer_id <= 30")
    assert sorted(ids) == sorted(a["customer_id"] for a in again)
