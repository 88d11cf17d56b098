//! The connector: validates the config and hands every task the same
//! config; Connect's consumer group spreads the input partitions.

use async_trait::async_trait;
use connect_api::config::ConfigValueInfo;
use connect_api::{
    ConfigDef, ConnectError, ConnectResult, Connector, ConnectorContext, ConnectorKind, Props,
};

use crate::config::{config_def, NormalizerConfig};

#[derive(Debug, Default)]
pub struct NormalizerConnector {
    props: Option<Props>,
}

#[async_trait]
impl Connector for NormalizerConnector {
    fn version(&self) -> &str {
        crate::VERSION
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }

    fn config_def(&self) -> ConfigDef {
        config_def()
    }

    async fn validate(&self, props: &Props) -> Vec<ConfigValueInfo> {
        let mut infos = config_def().validate(props);
        // Cross-field rules (e.g. Avro needs a registry) only show up when
        // the whole config is parsed.
        if infos.iter().all(|i| i.errors.is_empty()) {
            if let Err(ConnectError::Config { key, message, .. }) = NormalizerConfig::parse(props) {
                if let Some(info) = infos.iter_mut().find(|i| i.name == key) {
                    info.errors.push(message);
                }
            }
        }
        infos
    }

    async fn start(&mut self, _ctx: ConnectorContext, props: Props) -> ConnectResult<()> {
        NormalizerConfig::parse(&props)?;
        self.props = Some(props);
        Ok(())
    }

    async fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Props>> {
        let props = self
            .props
            .clone()
            .ok_or_else(|| ConnectError::fatal("task_configs called before start()"))?;
        Ok(vec![props; max_tasks.max(1)])
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        self.props = None;
        Ok(())
    }
}
