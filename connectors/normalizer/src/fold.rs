//! The per-key fold, as Flink's `ChangelogNormalize` does it (keep-last-row
//! on a changelog, no state TTL): a pure function from the stored document
//! and one input change to the state change and the event to emit.
//!
//! Kept free of I/O and encodings so that it can be tested on its own and so
//! that replay (which must rebuild state without emitting) uses exactly the
//! same rules as normal processing.

/// One input record for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<D> {
    /// A non-null value: the full document after the change. `snapshot`
    /// tells whether the source was still copying existing data.
    Upsert { doc: D, snapshot: bool },
    /// A tombstone (null value).
    Delete,
}

/// What happens to the stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange<D> {
    Put(D),
    Remove,
    /// Nothing to write (identical value, or delete of an unknown key).
    Keep,
}

/// What the normalizer emits (shared with the MongoDB source's envelope output).
pub use connect_changelog::Event;

/// Applies one input change to the stored document of its key.
///
/// Equality is on the whole stored representation of the document (never on
/// record metadata such as offsets or timestamps, which would make every
/// record look changed).
pub fn fold<D: PartialEq + Clone>(
    stored: Option<D>,
    input: Input<D>,
) -> (StateChange<D>, Event<D>) {
    match (stored, input) {
        (None, Input::Upsert { doc, snapshot }) => (
            StateChange::Put(doc.clone()),
            Event::Create {
                after: doc,
                snapshot,
            },
        ),
        (Some(before), Input::Upsert { doc, .. }) => {
            if before == doc {
                (StateChange::Keep, Event::SkippedIdentical)
            } else {
                (
                    StateChange::Put(doc.clone()),
                    Event::Update { before, after: doc },
                )
            }
        }
        (Some(before), Input::Delete) => (StateChange::Remove, Event::Delete { before }),
        (None, Input::Delete) => (StateChange::Keep, Event::SkippedUnknownDelete),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(d: &str) -> Input<String> {
        Input::Upsert {
            doc: d.to_string(),
            snapshot: false,
        }
    }

    #[test]
    fn follows_changelog_normalize_table() {
        assert_eq!(
            fold(None, up("a")),
            (
                StateChange::Put("a".into()),
                Event::Create {
                    after: "a".into(),
                    snapshot: false
                }
            )
        );
        assert_eq!(
            fold(
                None,
                Input::Upsert {
                    doc: "a".to_string(),
                    snapshot: true
                }
            )
            .1,
            Event::Create {
                after: "a".into(),
                snapshot: true
            }
        );
        assert_eq!(
            fold(Some("a".to_string()), up("b")),
            (
                StateChange::Put("b".into()),
                Event::Update {
                    before: "a".into(),
                    after: "b".into()
                }
            )
        );
        assert_eq!(
            fold(Some("a".to_string()), up("a")),
            (StateChange::Keep, Event::SkippedIdentical)
        );
        assert_eq!(
            fold(Some("a".to_string()), Input::Delete),
            (StateChange::Remove, Event::Delete { before: "a".into() })
        );
        assert_eq!(
            fold(None::<String>, Input::Delete),
            (StateChange::Keep, Event::SkippedUnknownDelete)
        );
    }

    #[test]
    fn snapshot_copy_of_a_known_key_is_an_update_not_a_read() {
        // Flink's rule ignores the incoming row kind once the key is known.
        let (_, e) = fold(
            Some("a".to_string()),
            Input::Upsert {
                doc: "b".to_string(),
                snapshot: true,
            },
        );
        assert_eq!(
            e,
            Event::Update {
                before: "a".into(),
                after: "b".into()
            }
        );
    }
}
