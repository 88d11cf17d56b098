use super::schema::{SchemaRef, SchemaType};

/// A decimal as Java's `BigDecimal` holds it: an unscaled integer and a scale.
///
/// The unscaled value is kept as big-endian two's-complement bytes, the form
/// Connect's `Decimal` logical type serialises, so arbitrarily large values
/// round-trip without a big-integer dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub unscaled: Vec<u8>,
    pub scale: i32,
}

impl Decimal {
    pub fn from_i128(unscaled: i128, scale: i32) -> Self {
        let bytes = unscaled.to_be_bytes();
        // Trim redundant sign-extension bytes, as BigInteger.toByteArray() does.
        let mut start = 0;
        while start < bytes.len() - 1 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        Decimal {
            unscaled: bytes[start..].to_vec(),
            scale,
        }
    }

    /// The unscaled value, if it fits in 128 bits.
    pub fn unscaled_i128(&self) -> Option<i128> {
        if self.unscaled.is_empty() {
            return Some(0);
        }
        if self.unscaled.len() > 16 {
            return None;
        }
        let negative = self.unscaled[0] & 0x80 != 0;
        let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
        buf[16 - self.unscaled.len()..].copy_from_slice(&self.unscaled);
        Some(i128::from_be_bytes(buf))
    }

    /// Parses a plain decimal string such as `-12.340`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let digits = format!("{int_part}{frac_part}");
        let unscaled: i128 = digits.parse().ok()?;
        let unscaled = if digits.starts_with('-') && unscaled == 0 {
            0
        } else {
            unscaled
        };
        Some(Decimal::from_i128(unscaled, frac_part.len() as i32))
    }

    /// Java's `BigDecimal.toPlainString()` rendering.
    pub fn to_plain_string(&self) -> String {
        let Some(unscaled) = self.unscaled_i128() else {
            return format!("<decimal of {} bytes>", self.unscaled.len());
        };
        if self.scale <= 0 {
            let mut s = unscaled.to_string();
            if unscaled != 0 {
                s.extend(std::iter::repeat_n('0', (-self.scale) as usize));
            }
            return s;
        }
        let negative = unscaled < 0;
        let digits = unscaled.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let padded = if digits.len() <= scale {
            format!("{}{}", "0".repeat(scale - digits.len() + 1), digits)
        } else {
            digits
        };
        let (i, f) = padded.split_at(padded.len() - scale);
        format!("{}{}.{}", if negative { "-" } else { "" }, i, f)
    }

    pub fn to_f64(&self) -> f64 {
        self.to_plain_string().parse().unwrap_or(f64::NAN)
    }
}

/// A struct value: a schema and one value per field, in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    pub schema: SchemaRef,
    pub values: Vec<Value>,
}

impl Struct {
    /// A struct with every field null; fill it with [`Struct::put`].
    pub fn new(schema: SchemaRef) -> Self {
        let values = vec![Value::Null; schema.fields.len()];
        Struct { schema, values }
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.schema.field(field).map(|f| &self.values[f.index])
    }

    /// Sets a field by name; returns false when the schema has no such field.
    pub fn put(&mut self, field: &str, value: Value) -> bool {
        match self.schema.field(field).map(|f| f.index) {
            Some(i) => {
                self.values[i] = value;
                true
            }
            None => false,
        }
    }

    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.put(field, value);
        self
    }

    /// Checks every field value against its schema (Java's `Struct.validate`).
    pub fn validate(&self) -> Result<(), String> {
        for f in &self.schema.fields {
            let v = &self.values[f.index];
            if v.is_null() {
                if !f.schema.optional && f.schema.default_value.is_none() {
                    return Err(format!(
                        "Invalid value: null used for required field: \"{}\", schema type: {}",
                        f.name,
                        f.schema.schema_type.java_name()
                    ));
                }
            } else if !v.matches(f.schema.schema_type) {
                return Err(format!(
                    "Invalid Java object for schema with type {}: {} for field: \"{}\"",
                    f.schema.schema_type.java_name(),
                    v.type_name(),
                    f.name
                ));
            }
        }
        Ok(())
    }
}

/// A Connect value. `Null` stands for Java's `null`.
///
/// Maps keep their entries as a vector of pairs: keys may be any value (not
/// only strings), and insertion order is what JsonConverter writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Boolean(bool),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Struct(Struct),
    /// Logical `org.apache.kafka.connect.data.Decimal` (physical type bytes).
    Decimal(Decimal),
    /// Logical `org.apache.kafka.connect.data.Date`: days since the epoch (physical int32).
    Date(i32),
    /// Logical `org.apache.kafka.connect.data.Time`: milliseconds since midnight (physical int32).
    Time(i32),
    /// Logical `org.apache.kafka.connect.data.Timestamp`: milliseconds since the epoch (physical int64).
    Timestamp(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an i64 when it is any integer type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int8(v) => Some(v.into()),
            Value::Int16(v) => Some(v.into()),
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }

    /// Looks up a string key in a map value.
    pub fn map_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The physical schema type this value can be written as.
    pub fn schema_type(&self) -> Option<SchemaType> {
        Some(match self {
            Value::Null => return None,
            Value::Int8(_) => SchemaType::Int8,
            Value::Int16(_) => SchemaType::Int16,
            Value::Int32(_) | Value::Date(_) | Value::Time(_) => SchemaType::Int32,
            Value::Int64(_) | Value::Timestamp(_) => SchemaType::Int64,
            Value::Float32(_) => SchemaType::Float32,
            Value::Float64(_) => SchemaType::Float64,
            Value::Boolean(_) => SchemaType::Boolean,
            Value::String(_) => SchemaType::String,
            Value::Bytes(_) | Value::Decimal(_) => SchemaType::Bytes,
            Value::Array(_) => SchemaType::Array,
            Value::Map(_) => SchemaType::Map,
            Value::Struct(_) => SchemaType::Struct,
        })
    }

    pub fn matches(&self, schema_type: SchemaType) -> bool {
        self.schema_type() == Some(schema_type)
    }

    /// A short description of the variant for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int8(_) => "Byte",
            Value::Int16(_) => "Short",
            Value::Int32(_) => "Integer",
            Value::Int64(_) => "Long",
            Value::Float32(_) => "Float",
            Value::Float64(_) => "Double",
            Value::Boolean(_) => "Boolean",
            Value::String(_) => "String",
            Value::Bytes(_) => "byte[]",
            Value::Array(_) => "ArrayList",
            Value::Map(_) => "HashMap",
            Value::Struct(_) => "Struct",
            Value::Decimal(_) => "BigDecimal",
            Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => "Date",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int32(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float64(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_match_big_integer_to_byte_array() {
        assert_eq!(Decimal::from_i128(0, 0).unscaled, vec![0x00]);
        assert_eq!(Decimal::from_i128(127, 0).unscaled, vec![0x7f]);
        assert_eq!(Decimal::from_i128(128, 0).unscaled, vec![0x00, 0x80]);
        assert_eq!(Decimal::from_i128(-1, 0).unscaled, vec![0xff]);
        assert_eq!(Decimal::from_i128(-129, 0).unscaled, vec![0xff, 0x7f]);
        for v in [
            0i128,
            1,
            -1,
            255,
            -256,
            i64::MAX as i128,
            i128::MIN,
            i128::MAX,
        ] {
            assert_eq!(Decimal::from_i128(v, 3).unscaled_i128(), Some(v));
        }
    }

    #[test]
    fn decimal_plain_string_round_trips() {
        for s in [
            "0",
            "1.5",
            "-12.340",
            "0.001",
            "-0.5",
            "123456789012345678901234567.89",
        ] {
            assert_eq!(
                Decimal::parse(s).map(|d| d.to_plain_string()).as_deref(),
                Some(s)
            );
        }
        assert_eq!(Decimal::from_i128(12, -2).to_plain_string(), "1200");
    }
}
