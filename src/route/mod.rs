//! The read side: rosters, the routes taken on them, dispatch, and what a
//! roster reports.
//!
//! A route reads an immutable [`Roster`] snapshot (through a [`Router`]'s
//! cache or the per-thread [`cache`]) and asks the group's strategy for a
//! candidate; nothing here takes a lock or waits for the writer.

pub(crate) mod cache;
pub(crate) mod dispatch;
mod report;
mod roster;
mod router;

pub use dispatch::{DispatchError, MAX_DISPATCH_ATTEMPTS};
pub use report::{CircuitState, GroupHealth, MemberInfo, MemberStats};
pub(crate) use roster::{Listed, NoRoute, Roster};
pub use router::Router;
