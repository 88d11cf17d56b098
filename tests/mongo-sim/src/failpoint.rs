//! `configureFailPoint` support: `failCommand` (and
//! `failGetMoreAfterCursorCheckout`) with the modes and data fields the
//! specification tests use.

use crate::bsonutil::as_i64;
use crate::error::{CmdError, CmdResult};
use bson::{Bson, Document};

#[derive(Debug, Clone)]
pub enum Mode {
    Off,
    AlwaysOn,
    Times(i64),
    Skip(i64),
}

#[derive(Debug, Clone)]
pub struct FailPoint {
    pub mode: Mode,
    pub data: Document,
}

/// What a triggered fail point does to the command.
#[derive(Debug, Default)]
pub struct Action {
    pub error: Option<CmdError>,
    pub close_connection: bool,
    pub block_ms: Option<u64>,
    pub write_concern_error: Option<Document>,
}

/// Error codes for which a getMore on a change stream carries the
/// `ResumableChangeStreamError` label (the server's resumable set).
pub fn resumable_code(code: i32) -> bool {
    matches!(
        code,
        6 | 7
            | 89
            | 91
            | 189
            | 262
            | 9001
            | 10107
            | 11600
            | 11602
            | 13435
            | 13436
            | 63
            | 150
            | 13388
            | 234
            | 133
            | 43
    )
}

pub fn parse(cmd: &Document) -> CmdResult<(String, FailPoint)> {
    let name = cmd
        .get_str("configureFailPoint")
        .map_err(|_| CmdError::bad_value("configureFailPoint must be a string"))?
        .to_string();
    let mode = match cmd.get("mode") {
        Some(Bson::String(s)) if s == "off" => Mode::Off,
        Some(Bson::String(s)) if s == "alwaysOn" => Mode::AlwaysOn,
        Some(Bson::Document(d)) => {
            if let Some(n) = d.get("times").and_then(as_i64) {
                Mode::Times(n)
            } else if let Some(n) = d.get("skip").and_then(as_i64) {
                Mode::Skip(n)
            } else {
                return Err(CmdError::bad_value("unsupported fail point mode"));
            }
        }
        _ => return Err(CmdError::bad_value("unsupported fail point mode")),
    };
    let data = cmd.get_document("data").cloned().unwrap_or_default();
    Ok((name, FailPoint { mode, data }))
}

impl FailPoint {
    /// Does this fail point apply to `cmd_name` from `app_name`? If so,
    /// consume one activation and return the action.
    pub fn trigger(
        &mut self,
        fp_name: &str,
        cmd_name: &str,
        app_name: Option<&str>,
        is_change_stream_getmore: bool,
    ) -> Option<Action> {
        if matches!(self.mode, Mode::Off) {
            return None;
        }
        match fp_name {
            "failCommand" => {
                let listed = self
                    .data
                    .get_array("failCommands")
                    .map(|a| a.iter().any(|c| c.as_str() == Some(cmd_name)))
                    .unwrap_or(false);
                if !listed {
                    return None;
                }
                if let Ok(app) = self.data.get_str("appName") {
                    if app_name != Some(app) {
                        return None;
                    }
                }
            }
            "failGetMoreAfterCursorCheckout" => {
                if cmd_name != "getMore" {
                    return None;
                }
            }
            _ => return None,
        }
        match &mut self.mode {
            Mode::Off => return None,
            Mode::AlwaysOn => {}
            Mode::Times(n) => {
                if *n <= 0 {
                    return None;
                }
                *n -= 1;
                if *n == 0 {
                    self.mode = Mode::Off;
                }
            }
            Mode::Skip(n) => {
                if *n > 0 {
                    *n -= 1;
                    return None;
                }
            }
        }
        let mut act = Action {
            close_connection: self.data.get_bool("closeConnection").unwrap_or(false),
            ..Default::default()
        };
        if self.data.get_bool("blockConnection").unwrap_or(false) {
            act.block_ms = Some(
                self.data
                    .get("blockTimeMS")
                    .and_then(as_i64)
                    .unwrap_or(0)
                    .max(0) as u64,
            );
        }
        if let Some(code) = self.data.get("errorCode").and_then(as_i64) {
            let code = code as i32;
            let mut e = CmdError::new(code, format!("Failing command via '{fp_name}' failpoint"));
            if let Ok(labels) = self.data.get_array("errorLabels") {
                e.labels = labels
                    .iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect();
            } else if fp_name == "failGetMoreAfterCursorCheckout"
                && is_change_stream_getmore
                && resumable_code(code)
            {
                e.labels.push("ResumableChangeStreamError".into());
            }
            act.error = Some(e);
        }
        if let Ok(wce) = self.data.get_document("writeConcernError") {
            act.write_concern_error = Some(wce.clone());
        }
        Some(act)
    }
}
