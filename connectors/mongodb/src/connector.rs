//! The connector: validates the config, makes (or reloads) the snapshot
//! plan, and spreads its chunks over `tasks.max` tasks. Task 0 also runs
//! the change stream; a config without a snapshot has one task.

use async_trait::async_trait;
use connect_api::config::{ConfigDef, ConfigValueInfo, Props};
use connect_api::connector::ConnectorKind;
use connect_api::error::ConnectResult;
use connect_api::{Connector, ConnectorContext};

use crate::bsonx;
use crate::config::{config_def, MongoConfig, Startup, TASK_CHUNKS, TASK_INDEX, TASK_PLAN};
use crate::error::MongoError;
use crate::offsets;
use crate::plan::{self, Plan};
use crate::stream;
use crate::task::connect;

#[derive(Default)]
pub struct MongoSourceConnector {
    props: Props,
    plan: Option<Plan>,
}

#[async_trait]
impl Connector for MongoSourceConnector {
    fn version(&self) -> &str {
        crate::VERSION
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }

    fn config_def(&self) -> ConfigDef {
        config_def()
    }

    async fn validate(&self, props: &Props) -> Vec<ConfigValueInfo> {
        let mut out = config_def().validate(props);
        // Cross-field and JSON checks the ConfigDef cannot express.
        if out.iter().all(|v| v.errors.is_empty()) {
            if let Err(MongoError::Config { key, message }) = MongoConfig::parse(props) {
                if let Some(v) = out.iter_mut().find(|v| v.name == key) {
                    v.errors.push(message);
                }
            }
        }
        out
    }

    async fn start(&mut self, ctx: ConnectorContext, props: Props) -> ConnectResult<()> {
        let cfg = MongoConfig::parse(&props).map_err(MongoError::into_connect)?;
        self.plan = None;
        if cfg.startup == Startup::Copy {
            let reader = ctx.offsets.clone().ok_or_else(|| {
                MongoError::Fatal(
                    "the worker gave the connector no offset reader; a snapshot cannot be planned"
                        .into(),
                )
                .into_connect()
            })?;
            let stored_plan = reader
                .offset(&offsets::plan_partition(&cfg.offset_partition_name))
                .await?
                .and_then(|o| {
                    o.get("plan")
                        .and_then(|p| p.as_str())
                        .and_then(Plan::from_json)
                });
            let stored_stream = reader
                .offset(&offsets::stream_partition(&cfg.offset_partition_name))
                .await?;
            self.plan = match stored_plan {
                Some(p) => {
                    tracing::info!(connector = %ctx.name, gen = p.gen, chunks = p.chunks.len(), "reusing the stored snapshot plan");
                    Some(p)
                }
                // A stored stream position without a plan: started before
                // with another mode; never copy over a running stream.
                None if stored_stream.is_some() => None,
                None => {
                    let client = connect(&cfg).await.map_err(MongoError::into_connect)?;
                    let start = stream::current_token(&client, &cfg)
                        .await
                        .map_err(MongoError::into_connect)?;
                    let p = plan::make_plan(&client, &cfg, 1, bsonx::token_json(&start), "initial")
                        .await
                        .map_err(MongoError::into_connect)?;
                    Some(p)
                }
            };
        }
        self.props = props;
        Ok(())
    }

    async fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Props>> {
        let Some(plan) = &self.plan else {
            let mut p = self.props.clone();
            p.insert(TASK_INDEX.into(), "0".into());
            return Ok(vec![p]);
        };
        let n = max_tasks.min(plan.chunks.len()).max(1);
        let plan_json = plan.to_json();
        Ok((0..n)
            .map(|i| {
                let mut p = self.props.clone();
                let mine: Vec<String> = plan
                    .chunks
                    .iter()
                    .filter(|c| c.n % n == i)
                    .map(|c| c.n.to_string())
                    .collect();
                p.insert(TASK_INDEX.into(), i.to_string());
                p.insert(TASK_PLAN.into(), plan_json.clone());
                p.insert(TASK_CHUNKS.into(), mine.join(","));
                p
            })
            .collect())
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}
