//! The Berth binary's wiring, as a library so that integration tests start
//! the real server (on port 0, with a fresh database) exactly as `main` does.

pub mod config;
pub mod serve;
