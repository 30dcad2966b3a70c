//! The Berth binary's wiring, as a library so that integration tests start
//! the real server (on port 0, with a fresh database) exactly as `main` does.

pub mod config;
pub mod reporting;
pub mod rotate_keys;
pub mod serve;
mod splunk;
pub mod sso;
mod stored_secrets;

/// This replica's default name in the controller's leader lease: host name
/// and process id, unique per replica.
pub fn controller_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "berth".into());
    format!("{}-{}", host.trim(), std::process::id())
}
