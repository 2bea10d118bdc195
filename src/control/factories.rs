//! The daemon factories: kind name → factory, registered through the
//! runtime and called only by the writer, each call contained.

use crate::daemon::{contain, Daemon, MeshDaemon};
use crate::error::GroupError;
use crate::sync::{Arc, DashMap};

/// A daemon factory, as registered with the runtime.
pub(crate) type Factory = dyn Fn() -> Box<dyn MeshDaemon> + Send + Sync;

/// Kind name → factory. A `dashmap`: registration works from any thread,
/// before and after `start`.
pub(crate) type Factories = DashMap<String, Arc<Factory>>;

/// Calls the factory, turning a panic into an error that names the kind.
pub(super) fn create(factory: &Factory, kind: &str, group_id: u32) -> Result<Daemon, GroupError> {
    contain(factory).map(Daemon::new).map_err(|panic| {
        GroupError::FactoryFailed(format!(
            "factory for kind `{kind}` panicked while creating a replica of group {group_id:#010x}: {panic}"
        ))
    })
}
