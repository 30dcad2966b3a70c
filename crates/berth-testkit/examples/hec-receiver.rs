//! The test HEC as a process, for `bench/hec`: `hec-receiver ADDR TOKEN`.
//! Prints its URL, serves until SIGTERM or Ctrl-C, then prints how many
//! events it accepted and how many distinct `fields.event_id`s they had.

use berth_testkit::hec::HecReceiver;
use std::collections::HashSet;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(token)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: hec-receiver ADDR TOKEN (ADDR such as 127.0.0.1:8088)");
    };
    let receiver = HecReceiver::start_on(addr.parse()?, &token).await?;
    println!("{}", receiver.url());
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let events = receiver.events();
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["fields"]["event_id"].as_str())
        .collect();
    println!("events {} distinct {}", events.len(), ids.len());
    Ok(())
}
