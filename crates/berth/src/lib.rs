//! The Berth binary's wiring, as a library so that integration tests start
//! the real server (on port 0, with a fresh database) exactly as `main` does.

use std::sync::atomic::{AtomicU64, Ordering};

pub mod config;
pub mod reporting;
pub mod rotate_keys;
pub mod serve;
mod splunk;
pub mod sso;
mod stored_secrets;

/// A name for this server in the leases it takes (the controller's leader
/// lease, the Splunk outbox's): host name, process id and a count of the
/// servers this process has started, so that two servers in one process
/// (tests run replicas so) never pass for one holder.
pub fn replica_identity() -> String {
    static SERVERS: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "berth".into());
    format!(
        "{}-{}-{}",
        host.trim(),
        std::process::id(),
        SERVERS.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_servers_in_one_process_are_two_lease_holders() {
        // With one name, each took the other's lease as its own, in turns,
        // and neither reconciled long enough to finish.
        assert_ne!(super::replica_identity(), super::replica_identity());
    }
}
