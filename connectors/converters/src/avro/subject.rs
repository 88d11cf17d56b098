//! Subject name strategies (`io.confluent.kafka.serializers.subject.*`).

/// How the subject a schema is registered under is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value` (the default).
    TopicName,
    /// The record's full name: several record types per topic.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// Accepts Confluent's class names and their simple names.
    pub fn from_class(class: &str) -> Option<SubjectNameStrategy> {
        let simple = class.trim().rsplit('.').next().unwrap_or_default();
        Some(match simple {
            "TopicNameStrategy" => SubjectNameStrategy::TopicName,
            "RecordNameStrategy" => SubjectNameStrategy::RecordName,
            "TopicRecordNameStrategy" => SubjectNameStrategy::TopicRecordName,
            _ => return None,
        })
    }

    /// The subject for a record of `topic` whose schema has `record_name`
    /// (the full name of a named type, else the Avro type name, as Java's
    /// `AvroSchema.name()`).
    pub fn subject(self, topic: &str, is_key: bool, record_name: &str) -> String {
        match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record_name.to_string(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{record_name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_name_subjects_like_confluent() {
        let t = SubjectNameStrategy::from_class(
            "io.confluent.kafka.serializers.subject.TopicNameStrategy",
        );
        assert_eq!(t, Some(SubjectNameStrategy::TopicName));
        assert_eq!(
            SubjectNameStrategy::TopicName.subject("orders", true, "x.Y"),
            "orders-key"
        );
        assert_eq!(
            SubjectNameStrategy::TopicName.subject("orders", false, "x.Y"),
            "orders-value"
        );
        assert_eq!(
            SubjectNameStrategy::RecordName.subject("orders", false, "x.Y"),
            "x.Y"
        );
        assert_eq!(
            SubjectNameStrategy::TopicRecordName.subject("orders", false, "x.Y"),
            "orders-x.Y"
        );
        assert_eq!(
            SubjectNameStrategy::from_class("RecordNameStrategy"),
            Some(SubjectNameStrategy::RecordName)
        );
        assert_eq!(SubjectNameStrategy::from_class("Nope"), None);
    }
}
