//! The settings a group is spawned with: one type, from the caller's
//! `ReplicaGroup::spawn` to the writer that places the replicas.

use std::fmt;

use crate::daemon::DaemonHostConfig;
use crate::strategy::Strategy;

/// How to spawn a group. Build it as a struct literal.
///
/// `Debug` redacts `group_seed`: whoever holds the seed can sign as every replica.
///
/// ```
/// use replica_router::{DaemonHostConfig, ReplicaGroupConfig, Strategy};
/// let config = ReplicaGroupConfig {
///     replica_count: 3,
///     group_seed: [7; 32],
///     lb_strategy: Strategy::LeastLatency,
///     host_config: DaemonHostConfig::default(),
/// };
/// assert!(!format!("{config:?}").contains("7, 7"));
/// ```
#[derive(Clone)]
pub struct ReplicaGroupConfig {
    /// Number of replicas, 1 to 255.
    pub replica_count: u8,
    /// The secret every replica identity derives from.
    pub group_seed: [u8; 32],
    /// How routes choose a replica.
    pub lb_strategy: Strategy,
    /// How each replica treats failures and measures latency.
    pub host_config: DaemonHostConfig,
}

impl fmt::Debug for ReplicaGroupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaGroupConfig")
            .field("replica_count", &self.replica_count)
            .field("group_seed", &"<redacted>")
            .field("lb_strategy", &self.lb_strategy)
            .field("host_config", &self.host_config)
            .finish()
    }
}
