//! `Filter`: drops every record. Useful only with a predicate that decides
//! which records it applies to.

use connect_api::{ConfigDef, ConnectRecord, ConnectResult, Props, Transform};

/// The filter transform.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filter;

impl Transform for Filter {
    fn configure(&mut self, _props: &Props) -> ConnectResult<()> {
        Ok(())
    }

    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }

    fn apply(&self, _record: ConnectRecord) -> ConnectResult<Option<ConnectRecord>> {
        Ok(None)
    }
}
