//! Number text handling with Java's semantics: `new BigDecimal(text)` for
//! decimals of any size, and `Number.longValue()`'s wrap-around truncation.

use connect_api::data::Decimal;

/// Splits a numeric literal into sign, all significant digits, and scale.
/// Accepts Java's `BigDecimal` grammar: `[+-]digits[.digits][(e|E)[+-]digits]`.
pub(crate) fn split_number(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    Some((negative, digits, frac_part.len() as i64 - exponent))
}

/// `new BigDecimal(text)`: exact, keeping the written scale (`1.50` has scale 2).
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let (negative, digits, scale) = split_number(text)?;
    let scale = i32::try_from(scale).ok()?;
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() <= 38 {
        let magnitude: i128 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().ok()?
        };
        return Some(Decimal::from_i128(
            if negative { -magnitude } else { magnitude },
            scale,
        ));
    }
    Some(Decimal {
        unscaled: twos_complement(negative, &magnitude_bytes(trimmed)),
        scale,
    })
}

/// Big-endian magnitude of a decimal digit string.
fn magnitude_bytes(digits: &str) -> Vec<u8> {
    let mut le: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in le.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            le.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    le.reverse();
    le
}

/// `BigInteger.toByteArray()` of a signed magnitude: minimal two's complement.
pub(crate) fn twos_complement(negative: bool, magnitude: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(magnitude.len() + 1);
    bytes.push(0u8);
    bytes.extend_from_slice(magnitude);
    if negative {
        for b in bytes.iter_mut() {
            *b = !*b;
        }
        for b in bytes.iter_mut().rev() {
            let (sum, overflow) = b.overflowing_add(1);
            *b = sum;
            if !overflow {
                break;
            }
        }
    }
    minimal_twos_complement(bytes)
}

/// Drops redundant sign-extension bytes, as `BigInteger` normalises.
pub(crate) fn minimal_twos_complement(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![0];
    }
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes.drain(..start);
    bytes
}

/// `Number.longValue()` of a numeric literal: the integer part, truncated
/// toward zero, reduced to its low 64 bits (two's complement wrap-around).
pub(crate) fn long_value(text: &str) -> i64 {
    let Some((negative, digits, scale)) = split_number(text) else {
        return 0;
    };
    let int_digits: &str = if scale >= 0 {
        let keep = digits.len().saturating_sub(scale as usize);
        &digits[..keep]
    } else {
        &digits
    };
    let mut v: u64 = 0;
    for d in int_digits.bytes() {
        v = v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
    }
    // 10^64 is a multiple of 2^64, so more than 64 trailing zeros leave 0.
    for _ in 0..(-scale).clamp(0, 64) {
        v = v.wrapping_mul(10);
    }
    let v = v as i64;
    if negative {
        v.wrapping_neg()
    } else {
        v
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use connect_api::data::java::decimal_to_string;

    #[test]
    fn decimals_keep_scale_and_size() {
        let cases = [
            ("1.50", "1.50"),
            ("-0.001", "-0.001"),
            ("1e3", "1E+3"),
            ("1.5E-8", "1.5E-8"),
            (
                "123456789012345678901234567890123456789012.5",
                "123456789012345678901234567890123456789012.5",
            ),
            (
                "-123456789012345678901234567890123456789012",
                "-123456789012345678901234567890123456789012",
            ),
            ("+7", "7"),
        ];
        for (input, out) in cases {
            assert_eq!(
                decimal_to_string(&parse_decimal(input).unwrap()),
                out,
                "{input}"
            );
        }
        assert_eq!(parse_decimal("-128").unwrap().unscaled, vec![0x80]);
        assert_eq!(twos_complement(true, &[0x80]), vec![0x80]);
        assert_eq!(twos_complement(false, &[0x80]), vec![0x00, 0x80]);
        assert!(parse_decimal("1.2.3").is_none());
        assert!(parse_decimal("abc").is_none());
    }

    #[test]
    fn long_value_truncates_and_wraps() {
        assert_eq!(long_value("12.9"), 12);
        assert_eq!(long_value("-12.9"), -12);
        assert_eq!(long_value("1e2"), 100);
        assert_eq!(long_value("9223372036854775808"), i64::MIN);
        assert_eq!(long_value("18446744073709551617"), 1);
        assert_eq!(long_value("1e100"), 0);
        assert_eq!(long_value("x"), 0);
    }
}
