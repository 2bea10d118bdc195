//! The write side: the writer thread and everything it owns.
//!
//! Every change (spawn, scale, node failure and recovery, shutdown) is a
//! [`Command`] sent to the one writer thread of a runtime, which plans it
//! against its [`NodeTable`] with [`Placement`], builds the group's next
//! roster off to the side, publishes it, and answers. The [`Engine`] is what
//! the user's handles share: the lifecycle, the command channel, the
//! registry that `deliver` reads, and the daemon factories.

mod command;
mod engine;
mod factories;
mod group_state;
mod node_table;
mod placement;
mod registry;
#[cfg(feature = "etcd")]
mod snapshot;
mod writer;

pub(crate) use command::{Command, GroupHandle, GroupRef, Reply};
pub(crate) use engine::{Engine, Phase};
pub(crate) use node_table::{Hosting, NodeTable};
#[cfg(feature = "etcd")]
pub(crate) use snapshot::WriterState;
#[cfg(feature = "etcd")]
pub(crate) use snapshot::{GroupSnapshot, NodeState};
