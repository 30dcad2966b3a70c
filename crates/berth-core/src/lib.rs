//! Berth's domain: plain types that can only hold valid values, and the pure
//! rules over them. Nothing here performs I/O or knows about Kubernetes clients.
//!
//! Values from the outside world are parsed once into these types at the edge
//! (HTTP handlers, the CRD), so the rest of the code never re-checks them.

pub mod account;
pub mod environment;
pub mod validation;
