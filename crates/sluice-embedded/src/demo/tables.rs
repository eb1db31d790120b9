//! The demo tables: their Arrow schemas and how each batch of rows is made.
//!
//! Every row draws from its own generator seeded by (table, row id), so a
//! batch depends on nothing but its row range, and an order can ask what
//! its customer's signup date was without replaying the customers table.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::names;
use super::rng::Rng;
use super::{CUSTOMERS, EVENTS, ORDERS};

/// 2020-01-01 and 2025-12-31 as days since the Unix epoch (Arrow `Date32`).
const FIRST_SIGNUP_DAY: i32 = 18_262;
const LAST_DAY: i32 = 20_453;
/// 2024-01-01T00:00:00Z in microseconds, and the length of (leap) 2024.
const EVENTS_START_MICROS: i64 = 1_704_067_200_000_000;
const EVENTS_SPAN_MICROS: i64 = 366 * MICROS_PER_DAY;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Separate salts keep the tables' (and the signup date's) streams apart.
const CUSTOMER_SALT: u64 = 0x5EED_C057_0000_0001;
const SIGNUP_SALT: u64 = 0x5EED_C057_0000_0002;
const ORDER_SALT: u64 = 0x5EED_0DE2_0000_0003;
const EVENT_SALT: u64 = 0x5EED_E7E7_0000_0004;

/// Decimal128(38, 9) has nine fractional digits; amounts are whole cents.
const DECIMAL_PRECISION: u8 = 38;
const DECIMAL_SCALE: i8 = 9;
const CENT: i128 = 10_000_000;

const TAGS: &[&str] = &[
    "vip",
    "newsletter",
    "churn_risk",
    "wholesale",
    "beta_tester",
];

const ORDER_STATUSES: &[(&str, u32)] = &[
    ("delivered", 60),
    ("shipped", 14),
    ("placed", 10),
    ("returned", 9),
    ("cancelled", 7),
];

const EVENT_TYPES: &[(&str, u32)] = &[
    ("page_view", 50),
    ("click", 25),
    ("search", 12),
    ("add_to_cart", 9),
    ("purchase", 4),
];

const DEVICES: &[(&str, u32)] = &[("desktop", 45), ("mobile", 45), ("tablet", 10)];

const COUNTRIES: &[(&str, u32)] = &[
    ("US", 40),
    ("GB", 10),
    ("CA", 8),
    ("DE", 8),
    ("IN", 8),
    ("FR", 6),
    ("BR", 5),
    ("JP", 5),
    ("AU", 4),
    ("MX", 3),
    ("NL", 2),
    ("SE", 1),
];

const SITE_PAGES: &[&str] = &["/", "/deals", "/cart", "/account", "/help"];
const PRODUCTS: i64 = 500;

/// One demo table: its name, size, schema and batch maker.
pub(super) struct DemoTable {
    pub name: &'static str,
    pub rows: usize,
    pub schema: fn() -> SchemaRef,
    /// Rows with ids `first_id .. first_id + len`.
    pub batch: fn(first_id: i64, len: usize) -> Result<RecordBatch, ArrowError>,
}

pub(super) const TABLES: [DemoTable; 3] = [
    DemoTable {
        name: "customers",
        rows: CUSTOMERS,
        schema: customers_schema,
        batch: customers_batch,
    },
    DemoTable {
        name: "orders",
        rows: ORDERS,
        schema: orders_schema,
        batch: orders_batch,
    },
    DemoTable {
        name: "events",
        rows: EVENTS,
        schema: events_schema,
        batch: events_batch,
    },
];

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn decimal_type() -> DataType {
    DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
}

fn address_fields() -> Fields {
    ["street", "city", "state", "zip"]
        .into_iter()
        .map(|name| Field::new(name, DataType::Utf8, true))
        .collect()
}

pub(super) fn customers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("ssn", DataType::Utf8, true),
        Field::new("card_number", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("address", DataType::Struct(address_fields()), true),
        Field::new("signup_date", DataType::Date32, true),
        Field::new("created_at", timestamp_type(), true),
        Field::new("lifetime_value", decimal_type(), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            true,
        ),
        Field::new("is_active", DataType::Boolean, true),
    ]))
}

pub(super) fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("order_date", DataType::Date32, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("amount", decimal_type(), true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("items", DataType::Int64, true),
        Field::new("created_at", timestamp_type(), true),
    ]))
}

pub(super) fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("event_time", timestamp_type(), true),
        Field::new("page", DataType::Utf8, true),
        Field::new("device", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("duration_ms", DataType::Int64, true),
        Field::new("revenue", DataType::Float64, true),
    ]))
}

/// A customer's signup date, from its own stream so orders can consult it.
fn signup_day(customer_id: i64) -> i32 {
    let mut rng = Rng::for_row(SIGNUP_SALT, customer_id);
    rng.range(i64::from(FIRST_SIGNUP_DAY), i64::from(LAST_DAY)) as i32
}

/// A moment during `day`, in microseconds since the epoch.
fn moment_on(day: i32, rng: &mut Rng) -> i64 {
    i64::from(day) * MICROS_PER_DAY + rng.below(MICROS_PER_DAY as u64) as i64
}

fn timestamp_builder(len: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(len).with_timezone("UTC")
}

fn decimal_builder(len: usize) -> Result<Decimal128Builder, ArrowError> {
    Decimal128Builder::with_capacity(len).with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)
}

fn customers_batch(first_id: i64, len: usize) -> Result<RecordBatch, ArrowError> {
    let mut id = Int64Builder::with_capacity(len);
    let mut name = StringBuilder::with_capacity(len, len * 16);
    let mut email = StringBuilder::with_capacity(len, len * 32);
    let mut ssn = StringBuilder::with_capacity(len, len * 11);
    let mut card = StringBuilder::with_capacity(len, len * 16);
    let mut phone = StringBuilder::with_capacity(len, len * 11);
    let mut street = StringBuilder::with_capacity(len, len * 16);
    let mut city = StringBuilder::with_capacity(len, len * 10);
    let mut state = StringBuilder::with_capacity(len, len * 2);
    let mut zip = StringBuilder::with_capacity(len, len * 5);
    let mut address_valid = Vec::with_capacity(len);
    let mut signup = Date32Builder::with_capacity(len);
    let mut created = timestamp_builder(len);
    let mut value = decimal_builder(len)?;
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut active = BooleanBuilder::with_capacity(len);
    let mut scratch = String::new();

    for customer_id in first_id..first_id + len as i64 {
        let mut rng = Rng::for_row(CUSTOMER_SALT, customer_id);
        id.append_value(customer_id);
        let person = names::person_name(&mut rng);
        scratch.clear();
        let _ = write!(scratch, "{} {}", person.first, person.last);
        name.append_value(&scratch);
        names::email(&mut scratch, &person, customer_id, &mut rng);
        email.append_value(&scratch);
        names::ssn(&mut scratch, &mut rng);
        ssn.append_value(&scratch);
        names::card_number(&mut scratch, &mut rng);
        card.append_value(&scratch);
        // A few customers never gave a phone number or an address, so NULLs
        // (and a NULL struct) reach every layer of the gateway.
        if rng.percent(2) {
            phone.append_null();
        } else {
            names::phone(&mut scratch, &mut rng);
            phone.append_value(&scratch);
        }
        let has_address = !rng.percent(1);
        address_valid.push(has_address);
        if has_address {
            let address = names::address(&mut rng);
            street.append_value(&address.street);
            city.append_value(address.city);
            state.append_value(address.state);
            zip.append_value(&address.zip);
        } else {
            for part in [&mut street, &mut city, &mut state, &mut zip] {
                part.append_null();
            }
        }
        let day = signup_day(customer_id);
        signup.append_value(day);
        created.append_value(moment_on(day, &mut rng));
        value.append_value(i128::from(rng.range(0, 500_000)) * CENT);
        let mut count = 0;
        for tag in TAGS {
            // At most three tags, each fairly rare, so many lists are empty.
            if count < 3 && rng.percent(20) {
                tags.values().append_value(tag);
                count += 1;
            }
        }
        tags.append(true);
        active.append_value(rng.percent(85));
    }

    let address_children: Vec<ArrayRef> = vec![
        Arc::new(street.finish()),
        Arc::new(city.finish()),
        Arc::new(state.finish()),
        Arc::new(zip.finish()),
    ];
    let address = StructArray::try_new(
        address_fields(),
        address_children,
        Some(NullBuffer::from(address_valid)),
    )?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(email.finish()),
        Arc::new(ssn.finish()),
        Arc::new(card.finish()),
        Arc::new(phone.finish()),
        Arc::new(address),
        Arc::new(signup.finish()),
        Arc::new(created.finish()),
        Arc::new(value.finish()),
        Arc::new(tags.finish()),
        Arc::new(active.finish()),
    ];
    RecordBatch::try_new(customers_schema(), columns)
}

fn orders_batch(first_id: i64, len: usize) -> Result<RecordBatch, ArrowError> {
    let mut id = Int64Builder::with_capacity(len);
    let mut customer = Int64Builder::with_capacity(len);
    let mut date = Date32Builder::with_capacity(len);
    let mut status = StringBuilder::with_capacity(len, len * 9);
    let mut amount = decimal_builder(len)?;
    let mut currency = StringBuilder::with_capacity(len, len * 3);
    let mut items = Int64Builder::with_capacity(len);
    let mut created = timestamp_builder(len);

    for order_id in first_id..first_id + len as i64 {
        let mut rng = Rng::for_row(ORDER_SALT, order_id);
        id.append_value(order_id);
        let customer_id = rng.range(1, CUSTOMERS as i64);
        customer.append_value(customer_id);
        // No order before its customer signed up.
        let day = rng.range(i64::from(signup_day(customer_id)), i64::from(LAST_DAY)) as i32;
        date.append_value(day);
        status.append_value(rng.weighted(ORDER_STATUSES));
        // Mostly small baskets: the smaller of two draws leans towards 1.
        let count = rng.range(1, 10).min(rng.range(1, 10));
        let unit_cents = rng.range(199, 19_999);
        amount.append_value(i128::from(count * unit_cents) * CENT);
        currency.append_value("USD");
        items.append_value(count);
        created.append_value(moment_on(day, &mut rng));
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(customer.finish()),
        Arc::new(date.finish()),
        Arc::new(status.finish()),
        Arc::new(amount.finish()),
        Arc::new(currency.finish()),
        Arc::new(items.finish()),
        Arc::new(created.finish()),
    ];
    RecordBatch::try_new(orders_schema(), columns)
}

fn events_batch(first_id: i64, len: usize) -> Result<RecordBatch, ArrowError> {
    let mut id = Int64Builder::with_capacity(len);
    let mut customer = Int64Builder::with_capacity(len);
    let mut kind = StringBuilder::with_capacity(len, len * 9);
    let mut time = timestamp_builder(len);
    let mut page = StringBuilder::with_capacity(len, len * 13);
    let mut device = StringBuilder::with_capacity(len, len * 7);
    let mut country = StringBuilder::with_capacity(len, len * 2);
    let mut duration = Int64Builder::with_capacity(len);
    let mut revenue = Float64Builder::with_capacity(len);
    let mut scratch = String::new();
    // Each event owns an equal slice of the year, so event_time rises with
    // event_id and row groups cover disjoint time ranges (good pruning).
    let slot = EVENTS_SPAN_MICROS / EVENTS as i64;

    for event_id in first_id..first_id + len as i64 {
        let mut rng = Rng::for_row(EVENT_SALT, event_id);
        id.append_value(event_id);
        // Visitors who are not signed in have no customer id.
        if rng.percent(3) {
            customer.append_null();
        } else {
            customer.append_value(rng.range(1, CUSTOMERS as i64));
        }
        let event_type = rng.weighted(EVENT_TYPES);
        kind.append_value(event_type);
        time.append_value(
            EVENTS_START_MICROS + (event_id - 1) * slot + rng.below(slot as u64) as i64,
        );
        scratch.clear();
        match event_type {
            "search" => scratch.push_str("/search"),
            "purchase" => scratch.push_str("/checkout/complete"),
            "page_view" if rng.percent(30) => scratch.push_str(rng.pick(SITE_PAGES)),
            _ => {
                let _ = write!(scratch, "/products/{}", rng.range(1, PRODUCTS));
            }
        }
        page.append_value(&scratch);
        device.append_value(rng.weighted(DEVICES));
        country.append_value(rng.weighted(COUNTRIES));
        // Dwell times have a long tail: cubing a uniform draw keeps most
        // short and a few very long. Plain multiplication rather than
        // `powi`, whose rounding Rust leaves unspecified across platforms.
        let max_ms = if event_type == "page_view" {
            120_000.0
        } else {
            5_000.0
        };
        let u = rng.unit();
        duration.append_value(50 + (u * u * u * max_ms) as i64);
        if event_type == "purchase" {
            revenue.append_value(rng.range(500, 50_000) as f64 / 100.0);
        } else {
            revenue.append_null();
        }
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(customer.finish()),
        Arc::new(kind.finish()),
        Arc::new(time.finish()),
        Arc::new(page.finish()),
        Arc::new(device.finish()),
        Arc::new(country.finish()),
        Arc::new(duration.finish()),
        Arc::new(revenue.finish()),
    ];
    RecordBatch::try_new(events_schema(), columns)
}
