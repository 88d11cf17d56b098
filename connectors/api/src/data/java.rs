//! Java's text renderings of Connect values.
//!
//! Converters and transforms must print numbers, decimals and dates exactly as
//! the Java worker does (JsonConverter output, `StringConverter`, `Cast` to
//! string, `TimestampRouter` topic names), so those renderings live here,
//! shared by every plugin crate.

use super::value::{Decimal, Value};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// `Double.toString(v)` as specified since JDK 19 (shortest decimal that
/// rounds to `v`; a one-digit result may be widened to the closer two-digit one).
pub fn double_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let shortest = format!("{:e}", v.abs());
    let two_digits = single_digit(&shortest).then(|| format!("{:.1e}", v.abs()));
    let chosen = match &two_digits {
        Some(two) if two.parse::<f64>().ok() == Some(v.abs()) => two,
        _ => &shortest,
    };
    render_java_float(v.is_sign_negative(), chosen)
}

/// `Float.toString(v)`, with the same rules as [`double_to_string`] for `f32`.
pub fn float_to_string(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let shortest = format!("{:e}", v.abs());
    let two_digits = single_digit(&shortest).then(|| format!("{:.1e}", v.abs()));
    let chosen = match &two_digits {
        Some(two) if two.parse::<f32>().ok() == Some(v.abs()) => two,
        _ => &shortest,
    };
    render_java_float(v.is_sign_negative(), chosen)
}

/// Java widens a one-digit result to the two-digit decimal closest to the
/// binary value when that one also rounds back to it (e.g. `4.9E-324`, where
/// Rust's shortest form is `5e-324`).
fn single_digit(sci: &str) -> bool {
    sci.split_once('e')
        .is_some_and(|(mantissa, _)| mantissa.len() == 1)
}

/// Lays out Rust `{:e}` output (`d.ddde-5`) the way `Double.toString` does.
fn render_java_float(negative: bool, sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if digits == "0" {
        out.push_str("0.0");
        return out;
    }
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

/// Java's `String.trim()`: strips every char up to and including U+0020
/// from both ends (Rust's `trim` strips Unicode whitespace instead).
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// The unscaled value of a decimal as a sign and decimal digits, for any size.
pub fn decimal_unscaled_digits(d: &Decimal) -> (bool, String) {
    if let Some(v) = d.unscaled_i128() {
        return (v < 0, v.unsigned_abs().to_string());
    }
    // Larger than 128 bits: negate the two's complement and divide by 10^9 repeatedly.
    let negative = d.unscaled[0] & 0x80 != 0;
    let mut mag: Vec<u8> = d.unscaled.clone();
    if negative {
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (sum, overflow) = b.overflowing_add(1);
            *b = sum;
            if !overflow {
                break;
            }
        }
    }
    let mut chunks = Vec::new();
    while mag.iter().any(|b| *b != 0) {
        let mut rem: u64 = 0;
        for b in mag.iter_mut() {
            let cur = (rem << 8) | u64::from(*b);
            *b = (cur / 1_000_000_000) as u8;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem);
    }
    let mut s = chunks
        .pop()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "0".into());
    for c in chunks.iter().rev() {
        s.push_str(&format!("{c:09}"));
    }
    (negative, s)
}

/// `BigDecimal.toString()`: plain notation unless the scale is negative or
/// the adjusted exponent is below -6, then `1.23E+5` style.
pub fn decimal_to_string(d: &Decimal) -> String {
    let (negative, digits) = decimal_unscaled_digits(d);
    let scale = i64::from(d.scale);
    let adjusted = -scale + (digits.len() as i64 - 1);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as usize;
        if scale == 0 {
            out.push_str(&digits);
        } else if digits.len() > scale {
            out.push_str(&digits[..digits.len() - scale]);
            out.push('.');
            out.push_str(&digits[digits.len() - scale..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - digits.len()));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        if adjusted >= 0 {
            out.push('+');
        }
        out.push_str(&adjusted.to_string());
    }
    out
}

/// Java's week-based year with the default (en_US) week rules: weeks start
/// on Sunday and week 1 is the one containing January 1st, so the last days
/// of December can belong to the next year.
fn week_year(t: &Civil) -> i64 {
    let next_jan1 = days_from_civil(t.year + 1, 1, 1);
    // 1970-01-01 was a Thursday: Sunday-based weekday index of a day number.
    let sunday_index = (next_jan1 + 4).rem_euclid(7);
    if t.days >= next_jan1 - sunday_index {
        t.year + 1
    } else {
        t.year
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC calendar breakdown of epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    /// Days since 1970-01-01.
    days: i64,
    year: i64,
    month: u32,
    day: u32,
    day_of_year: u32,
    weekday: u32, // 1 = Monday .. 7 = Sunday
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

fn civil_from_millis(millis: i64) -> Civil {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let ms_of_day = millis.rem_euclid(MILLIS_PER_DAY);
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, as java.time).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = (doy_mar - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let day_of_year = CUMULATIVE[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        days,
        year,
        month,
        day,
        day_of_year,
        weekday: ((days + 3).rem_euclid(7) + 1) as u32,
        hour: (ms_of_day / 3_600_000) as u32,
        minute: (ms_of_day / 60_000 % 60) as u32,
        second: (ms_of_day / 1000 % 60) as u32,
        millis: (ms_of_day % 1000) as u32,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A validated `java.text.SimpleDateFormat` pattern, always applied in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    parts: Vec<DatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePart {
    Literal(String),
    Field(char, usize),
}

impl DateFormat {
    /// Parses a pattern; the error names the first unsupported letter, as
    /// Java's "Illegal pattern character" does.
    pub fn new(pattern: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // '' is a literal quote; 'text' is quoted literal text.
                if chars.get(i + 1) == Some(&'\'') {
                    parts.push(DatePart::Literal("'".into()));
                    i += 2;
                    continue;
                }
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("Unterminated quote".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            lit.push(*ch);
                            i += 1;
                        }
                    }
                }
                parts.push(DatePart::Literal(lit));
            } else if c.is_ascii_alphabetic() {
                if "wW".contains(c) {
                    return Err(format!(
                        "Unsupported pattern character '{c}': week fields depend on a locale"
                    ));
                }
                if !"GyYMLdDEuaHkKhmsSzZXF".contains(c) {
                    return Err(format!("Illegal pattern character '{c}'"));
                }
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
                }
                parts.push(DatePart::Field(c, n));
                i += n;
            } else {
                parts.push(DatePart::Literal(c.to_string()));
                i += 1;
            }
        }
        Ok(DateFormat { parts })
    }

    /// Formats epoch milliseconds in UTC.
    pub fn format(&self, millis: i64) -> String {
        let t = civil_from_millis(millis);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                DatePart::Literal(s) => out.push_str(s),
                DatePart::Field(c, n) => format_field(&mut out, &t, *c, *n),
            }
        }
        out
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", v.unsigned_abs(), width = width));
}

fn text(out: &mut String, full: &str, n: usize) {
    out.push_str(if n >= 4 { full } else { &full[..3] });
}

fn format_field(out: &mut String, t: &Civil, c: char, n: usize) {
    match c {
        'G' => out.push_str(if t.year > 0 { "AD" } else { "BC" }),
        'y' | 'Y' => {
            let year = if c == 'Y' { week_year(t) } else { t.year };
            let year = if year > 0 { year } else { 1 - year };
            if n == 2 {
                pad(out, year % 100, 2);
            } else {
                pad(out, year, n);
            }
        }
        'u' => pad(out, i64::from(t.weekday), n),
        'M' | 'L' => {
            if n >= 3 {
                text(out, MONTHS[(t.month - 1) as usize], n);
            } else {
                pad(out, i64::from(t.month), n);
            }
        }
        'd' => pad(out, i64::from(t.day), n),
        'D' => pad(out, i64::from(t.day_of_year), n),
        'E' => text(out, WEEKDAYS[(t.weekday - 1) as usize], n),
        'a' => out.push_str(if t.hour < 12 { "AM" } else { "PM" }),
        'H' => pad(out, i64::from(t.hour), n),
        'k' => pad(out, i64::from(if t.hour == 0 { 24 } else { t.hour }), n),
        'K' => pad(out, i64::from(t.hour % 12), n),
        'h' => pad(
            out,
            i64::from(match t.hour % 12 {
                0 => 12,
                h => h,
            }),
            n,
        ),
        'm' => pad(out, i64::from(t.minute), n),
        's' => pad(out, i64::from(t.second), n),
        // SimpleDateFormat's S is the millisecond count, zero-padded, not a fraction.
        'S' => pad(out, i64::from(t.millis), n),
        'z' => out.push_str(if n >= 4 {
            "Coordinated Universal Time"
        } else {
            "UTC"
        }),
        'Z' => out.push_str("+0000"),
        'X' => out.push('Z'),
        // Day-of-week-in-month; week-of-year/-month need a locale and are rejected by `new`.
        'F' => pad(out, i64::from((t.day - 1) / 7 + 1), n),
        _ => {}
    }
}

/// `java.util.Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn date_to_string(millis: i64) -> String {
    let t = civil_from_millis(millis);
    let mut out = String::new();
    text(&mut out, WEEKDAYS[(t.weekday - 1) as usize], 3);
    out.push(' ');
    text(&mut out, MONTHS[(t.month - 1) as usize], 3);
    out.push_str(&format!(
        " {:02} {:02}:{:02}:{:02} UTC {}",
        t.day, t.hour, t.minute, t.second, t.year
    ));
    out
}

/// Connect's `Values.dateFormatFor(date).format(date)`: a time of day when the
/// instant is within the first day, a date when it is midnight, else a timestamp.
pub fn iso_date_string(millis: i64) -> String {
    let t = civil_from_millis(millis);
    let date = || format!("{:04}-{:02}-{:02}", t.year, t.month, t.day);
    let time = || {
        format!(
            "{:02}:{:02}:{:02}.{:03}Z",
            t.hour, t.minute, t.second, t.millis
        )
    };
    if millis < MILLIS_PER_DAY {
        time()
    } else if millis % MILLIS_PER_DAY == 0 {
        date()
    } else {
        format!("{}T{}", date(), time())
    }
}

/// Epoch milliseconds of a logical temporal value (as `java.util.Date.getTime()`).
pub fn temporal_millis(v: &Value) -> Option<i64> {
    match *v {
        Value::Date(days) => Some(i64::from(days) * MILLIS_PER_DAY),
        Value::Time(ms) => Some(i64::from(ms)),
        Value::Timestamp(ms) => Some(ms),
        _ => None,
    }
}

/// The Java class of the object a value stands for, for error messages that
/// print `value.getClass()` (`java.lang.Long`, `java.util.HashMap`, ...).
pub fn class_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Int8(_) => "java.lang.Byte",
        Value::Int16(_) => "java.lang.Short",
        Value::Int32(_) => "java.lang.Integer",
        Value::Int64(_) => "java.lang.Long",
        Value::Float32(_) => "java.lang.Float",
        Value::Float64(_) => "java.lang.Double",
        Value::Boolean(_) => "java.lang.Boolean",
        Value::String(_) => "java.lang.String",
        Value::Bytes(_) => "[B",
        Value::Array(_) => "java.util.ArrayList",
        Value::Map(_) => "java.util.HashMap",
        Value::Struct(_) => "org.apache.kafka.connect.data.Struct",
        Value::Decimal(_) => "java.math.BigDecimal",
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => "java.util.Date",
    }
}

/// `String.valueOf(value)`: Java's `toString()` of the object a value stands for.
///
/// Byte arrays are the one deliberate difference: Java prints an identity
/// hash (`[B@6d06d69c`), which nobody can depend on, so they print as base64.
pub fn to_java_string(v: &Value) -> String {
    let mut out = String::new();
    write_java_string(&mut out, v);
    out
}

fn write_java_string(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Null => out.push_str("null"),
        Value::Int8(n) => out.push_str(&n.to_string()),
        Value::Int16(n) => out.push_str(&n.to_string()),
        Value::Int32(n) => out.push_str(&n.to_string()),
        Value::Int64(n) => out.push_str(&n.to_string()),
        Value::Float32(f) => out.push_str(&float_to_string(*f)),
        Value::Float64(f) => out.push_str(&double_to_string(*f)),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&base64_encode(b)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java_string(out, item);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java_string(out, k);
                out.push('=');
                write_java_string(out, val);
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push_str("Struct{");
            let mut first = true;
            for f in &s.schema.fields {
                let val = &s.values[f.index];
                if val.is_null() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                let _ = write!(out, "{}=", f.name);
                write_java_string(out, val);
            }
            out.push('}');
        }
        Value::Decimal(d) => out.push_str(&decimal_to_string(d)),
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
            out.push_str(&date_to_string(temporal_millis(v).unwrap_or(0)))
        }
    }
}

/// Standard base64 with padding (`java.util.Base64.getEncoder()`, Jackson's default variant).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (9999999.0, "9999999.0"),
            (1.0e7, "1.0E7"),
            (1.0e10, "1.0E10"),
            (12345678.9, "1.23456789E7"),
            (1.0e-5, "1.0E-5"),
            (123.456, "123.456"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (4.9e-324, "4.9E-324"),
            (1.0e23, "1.0E23"),
            (2.0e-3, "0.002"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, s) in cases {
            assert_eq!(double_to_string(*v), *s, "{v:e}");
        }
    }

    #[test]
    fn floats_print_like_java() {
        let cases: &[(f32, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (3.4028235e38, "3.4028235E38"),
            (1.4e-45, "1.4E-45"),
            (1.0e7, "1.0E7"),
            (123.45, "123.45"),
        ];
        for (v, s) in cases {
            assert_eq!(float_to_string(*v), *s);
        }
    }

    #[test]
    fn big_decimal_to_string_matches_java() {
        assert_eq!(decimal_to_string(&Decimal::from_i128(12345, 2)), "123.45");
        assert_eq!(decimal_to_string(&Decimal::from_i128(-5, 3)), "-0.005");
        assert_eq!(decimal_to_string(&Decimal::from_i128(0, 2)), "0.00");
        assert_eq!(decimal_to_string(&Decimal::from_i128(1, 10)), "1E-10");
        assert_eq!(decimal_to_string(&Decimal::from_i128(12, -2)), "1.2E+3");
        assert_eq!(decimal_to_string(&Decimal::from_i128(123, 0)), "123");
        let big = Decimal {
            unscaled: vec![0x01; 20],
            scale: 0,
        };
        assert_eq!(
            decimal_unscaled_digits(&big).1,
            "5731378969925109483151705226338364782964441345"
        );
        let neg = Decimal {
            unscaled: vec![0xff; 20],
            scale: 0,
        };
        assert_eq!(decimal_unscaled_digits(&neg), (true, "1".to_string()));
    }

    #[test]
    fn dates_format_in_utc() {
        let f = DateFormat::new("yyyyMMdd").unwrap();
        assert_eq!(f.format(0), "19700101");
        // 2024-02-29T13:45:06.789Z
        let t = 1_709_214_306_789;
        assert_eq!(
            DateFormat::new("yyyy-MM-dd'T'HH:mm:ss.SSS EEE MMM D a hh")
                .unwrap()
                .format(t),
            "2024-02-29T13:45:06.789 Thu Feb 60 PM 01"
        );
        assert_eq!(DateFormat::new("yy''").unwrap().format(t), "24'");
        // 2024-12-29 is a Sunday: with en_US weeks it starts week 1 of 2025.
        let dec29 = days_from_civil(2024, 12, 29) * MILLIS_PER_DAY;
        assert_eq!(
            DateFormat::new("YYYY yyyy").unwrap().format(dec29),
            "2025 2024"
        );
        assert_eq!(
            DateFormat::new("YYYY")
                .unwrap()
                .format(dec29 - MILLIS_PER_DAY),
            "2024"
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19782);
        assert!(DateFormat::new("yyyy-bb").unwrap_err().contains("'b'"));
        assert_eq!(date_to_string(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(iso_date_string(1000), "00:00:01.000Z");
        assert_eq!(iso_date_string(86_400_000 * 2), "1970-01-03");
        assert_eq!(iso_date_string(t), "2024-02-29T13:45:06.789Z");
        assert_eq!(
            DateFormat::new("yyyy-MM-dd").unwrap().format(-1),
            "1969-12-31"
        );
    }

    #[test]
    fn java_to_string_of_containers() {
        let v = Value::Array(vec![Value::Int32(1), Value::Float64(2.0), Value::Null]);
        assert_eq!(to_java_string(&v), "[1, 2.0, null]");
        let m = Value::Map(vec![(Value::from("a"), Value::Boolean(true))]);
        assert_eq!(to_java_string(&m), "{a=true}");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(b"a"), "YQ==");
    }
}
