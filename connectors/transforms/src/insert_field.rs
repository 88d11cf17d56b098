//! `InsertField$Key` / `InsertField$Value`: adds the record's topic,
//! partition, offset (sink records only), timestamp or a static string as
//! fields of the key or value. A name ending in `!` makes the added struct
//! field required; `?` (the default) keeps it optional.

use connect_api::config::{ConfigType, Default as ConfigDefault, Importance};
use connect_api::data::logical;
use connect_api::record::SinkRecord;
use connect_api::{
    ConfigDef, ConnectError, ConnectRecord, ConnectResult, Props, Schema, SchemaBuilder, SchemaRef,
    SchemaType, Struct, Transform, Value,
};

use crate::util::{
    add_field, copy_schema_basics, field_value, map_put, parse_config, require_map, require_struct,
    Operand, SchemaCache,
};

const TOPIC_FIELD: &str = "topic.field";
const PARTITION_FIELD: &str = "partition.field";
const OFFSET_FIELD: &str = "offset.field";
const TIMESTAMP_FIELD: &str = "timestamp.field";
const STATIC_FIELD: &str = "static.field";
const STATIC_VALUE: &str = "static.value";
const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
const PURPOSE: &str = "field insertion";

/// A field to insert and whether its schema is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InsertionSpec {
    name: String,
    optional: bool,
}

impl InsertionSpec {
    fn parse(spec: Option<&str>) -> Option<InsertionSpec> {
        let spec = spec?;
        Some(if let Some(name) = spec.strip_suffix('?') {
            InsertionSpec {
                name: name.into(),
                optional: true,
            }
        } else if let Some(name) = spec.strip_suffix('!') {
            InsertionSpec {
                name: name.into(),
                optional: false,
            }
        } else {
            InsertionSpec {
                name: spec.into(),
                optional: true,
            }
        })
    }
}

/// The insert-field transform.
#[derive(Debug)]
pub struct InsertField {
    operand: Operand,
    topic: Option<InsertionSpec>,
    partition: Option<InsertionSpec>,
    offset: Option<InsertionSpec>,
    timestamp: Option<InsertionSpec>,
    static_field: Option<InsertionSpec>,
    static_value: Option<String>,
    replace_null_with_default: bool,
    cache: SchemaCache,
}

impl InsertField {
    pub fn new(operand: Operand) -> Self {
        InsertField {
            operand,
            topic: None,
            partition: None,
            offset: None,
            timestamp: None,
            static_field: None,
            static_value: None,
            replace_null_with_default: true,
            cache: SchemaCache::default(),
        }
    }

    pub fn definition() -> ConfigDef {
        const OPTIONALITY: &str = "Suffix the name with <code>!</code> for a required field or <code>?</code> for an optional one (the default).";
        ConfigDef::new()
            .key(TOPIC_FIELD, ConfigType::String, ConfigDefault::Null, Importance::Medium, &format!("Name of the field that receives the Kafka topic. {OPTIONALITY}"))
            .key(PARTITION_FIELD, ConfigType::String, ConfigDefault::Null, Importance::Medium, &format!("Name of the field that receives the Kafka partition. {OPTIONALITY}"))
            .key(OFFSET_FIELD, ConfigType::String, ConfigDefault::Null, Importance::Medium, &format!("Name of the field that receives the Kafka offset; sink connectors only.<br/>{OPTIONALITY}"))
            .key(TIMESTAMP_FIELD, ConfigType::String, ConfigDefault::Null, Importance::Medium, &format!("Name of the field that receives the record timestamp. {OPTIONALITY}"))
            .key(STATIC_FIELD, ConfigType::String, ConfigDefault::Null, Importance::Medium, &format!("Name of the field that receives the static value. {OPTIONALITY}"))
            .key(STATIC_VALUE, ConfigType::String, ConfigDefault::Null, Importance::Medium, "The static value to insert when a static field name is set.")
            .key(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, ConfigDefault::Value("true".into()), Importance::Medium, "When true, copied fields that are null but have a default take the default; when false they stay null.")
    }

    fn insert(&self, record: ConnectRecord, offset: Option<i64>) -> ConnectResult<ConnectRecord> {
        let value = self.operand.value(&record);
        if value.is_null() {
            return Ok(record);
        }
        // Java's requireSinkRecord: only sink records carry an offset.
        let offset = match (&self.offset, offset) {
            (Some(_), None) => {
                return Err(ConnectError::data(format!(
                    "Only SinkRecord supported for [{PURPOSE}], found: org.apache.kafka.connect.source.SourceRecord"
                )))
            }
            (_, offset) => offset,
        };
        match self.operand.schema(&record) {
            None => {
                let mut entries = require_map(value, PURPOSE)?.to_vec();
                if let Some(f) = &self.topic {
                    map_put(&mut entries, &f.name, Value::String(record.topic.clone()));
                }
                if let (Some(f), Some(p)) = (&self.partition, record.kafka_partition) {
                    map_put(&mut entries, &f.name, Value::Int32(p));
                }
                if let (Some(f), Some(o)) = (&self.offset, offset) {
                    map_put(&mut entries, &f.name, Value::Int64(o));
                }
                if let (Some(f), Some(t)) = (&self.timestamp, record.timestamp) {
                    map_put(&mut entries, &f.name, Value::Int64(t));
                }
                if let (Some(f), Some(v)) = (&self.static_field, &self.static_value) {
                    map_put(&mut entries, &f.name, Value::String(v.clone()));
                }
                Ok(self.operand.set(record, None, Value::Map(entries)))
            }
            Some(_) => {
                let st = require_struct(value, PURPOSE)?;
                let schema = self
                    .cache
                    .get_or_build(&st.schema, || self.updated_schema(&st.schema))?;
                let mut updated = Struct::new(schema.clone());
                for f in &st.schema.fields {
                    updated.put(
                        &f.name,
                        field_value(st, &f.name, self.replace_null_with_default),
                    );
                }
                let mut put = |spec: &Option<InsertionSpec>, v: Option<Value>| {
                    if let (Some(spec), Some(v)) = (spec, v) {
                        updated.put(&spec.name, v);
                    }
                };
                put(&self.topic, Some(Value::String(record.topic.clone())));
                put(&self.partition, record.kafka_partition.map(Value::Int32));
                put(&self.offset, offset.map(Value::Int64));
                put(&self.timestamp, record.timestamp.map(Value::Timestamp));
                put(
                    &self.static_field,
                    self.static_value.clone().map(Value::String),
                );
                Ok(self
                    .operand
                    .set(record, Some(schema), Value::Struct(updated)))
            }
        }
    }

    fn updated_schema(&self, schema: &Schema) -> ConnectResult<SchemaRef> {
        let mut builder = copy_schema_basics(schema, SchemaBuilder::struct_());
        for f in &schema.fields {
            builder = builder.field(f.name.clone(), f.schema.clone());
        }
        let typed = |spec: &InsertionSpec, t: SchemaType| Schema::primitive(t, spec.optional);
        let additions = [
            self.topic
                .as_ref()
                .map(|s| (s, typed(s, SchemaType::String))),
            self.partition
                .as_ref()
                .map(|s| (s, typed(s, SchemaType::Int32))),
            self.offset
                .as_ref()
                .map(|s| (s, typed(s, SchemaType::Int64))),
            self.timestamp.as_ref().map(|s| {
                let b = logical::timestamp();
                (
                    s,
                    if s.optional {
                        b.optional().build()
                    } else {
                        b.build()
                    },
                )
            }),
            self.static_field
                .as_ref()
                .map(|s| (s, typed(s, SchemaType::String))),
        ];
        for (spec, field_schema) in additions.into_iter().flatten() {
            builder = add_field(builder, &spec.name, field_schema)?;
        }
        Ok(builder.build())
    }
}

impl Transform for InsertField {
    fn configure(&mut self, props: &Props) -> ConnectResult<()> {
        let c = parse_config(&Self::definition(), props)?;
        self.topic = InsertionSpec::parse(c.string(TOPIC_FIELD));
        self.partition = InsertionSpec::parse(c.string(PARTITION_FIELD));
        self.offset = InsertionSpec::parse(c.string(OFFSET_FIELD));
        self.timestamp = InsertionSpec::parse(c.string(TIMESTAMP_FIELD));
        self.static_field = InsertionSpec::parse(c.string(STATIC_FIELD));
        self.static_value = c.string(STATIC_VALUE).map(str::to_string);
        self.replace_null_with_default = c.bool(REPLACE_NULL_WITH_DEFAULT).unwrap_or(true);
        if self.topic.is_none()
            && self.partition.is_none()
            && self.offset.is_none()
            && self.timestamp.is_none()
            && self.static_field.is_none()
        {
            return Err(ConnectError::fatal("No field insertion configured"));
        }
        if let (Some(f), None) = (&self.static_field, &self.static_value) {
            return Err(ConnectError::config(
                STATIC_VALUE,
                "null",
                format!("No value specified for static field: {}", f.name),
            ));
        }
        self.cache = SchemaCache::default();
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        Self::definition()
    }

    fn apply(&self, record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        self.insert(record, None).map(Some)
    }

    fn apply_sink(&self, record: SinkRecord) -> ConnectResult<Option<SinkRecord>> {
        let SinkRecord {
            record: inner,
            kafka_offset,
            timestamp_type,
            raw_key,
            raw_value,
        } = record;
        let inner = self.insert(inner, Some(kafka_offset))?;
        Ok(Some(SinkRecord {
            record: inner,
            kafka_offset,
            timestamp_type,
            raw_key,
            raw_value,
        }))
    }
}
