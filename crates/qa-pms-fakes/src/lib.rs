//! Fake upstream servers over real loopback HTTP, for qa-pms integration tests and benchmarks.
//!
//! [`jira::FakeJira`] speaks Jira Cloud's REST API v3 with realistic payloads, errors and limits,
//! and lets the test inject latency, rate limits, failures and refused connections.

mod harness;
pub mod jira;
pub mod postman;
pub mod testmo;
