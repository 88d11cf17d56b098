//! Herders decide what runs where and answer the REST API.

pub mod api;
pub mod cluster;
pub mod connector_config;
pub mod signing;
