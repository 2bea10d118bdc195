//! What a process reports about itself: how far it applied, its roster
//! digest there, and what its feed counted.

use super::schema::RecordError;

/// Counters of what the feed did, for monitoring and tests. Every value
/// refused (malformed, of an unknown schema version, or sealed so this
/// process cannot open it) is counted here and logged, and never applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// The last etcd revision applied (0 before any).
    pub applied_revision: i64,
    /// The checkpoint revision this process started from (0: it replayed
    /// the history from the start).
    pub restored_from: i64,
    /// Events applied (since the checkpoint it started from).
    pub events_applied: u64,
    /// Events seen again (a resumed watch overlapping) and skipped.
    pub duplicates_skipped: u64,
    /// Values under the prefix that did not parse.
    pub malformed: u64,
    /// Records of a schema version this crate does not know.
    pub unknown_version: u64,
    /// Sealed values this process could not open: no secret, the wrong
    /// secret, a seed moved from another group's key, or altered bytes.
    pub unopenable: u64,
    /// Valid changes the runtime refused (e.g. a group that cannot be placed).
    pub rejected: u64,
    /// Times another process claimed this process's node id.
    pub duplicate_claims: u64,
    /// Checkpoints this process wrote.
    pub checkpoints_written: u64,
    /// Checkpoints of other processes that matched this process's own state
    /// at their revision.
    pub checkpoints_verified: u64,
    /// Checkpoints that did not match this process's own state at their
    /// revision: the processes disagree (logged as an error).
    pub checkpoint_mismatches: u64,
    /// Checkpoints that could not be opened or decoded.
    pub checkpoints_refused: u64,
    /// Size in bytes of the last checkpoint this process sealed.
    pub last_checkpoint_bytes: u64,
    /// Time the last checkpoint took: the writer's snapshot, the encoding,
    /// the digest and the sealing, in microseconds.
    pub last_checkpoint_micros: u64,
    /// etcd compacted history this process had not yet applied (it was
    /// disconnected too long): its rosters are frozen at
    /// `applied_revision`; restart it to catch up from a checkpoint.
    pub history_lost: bool,
}

impl FeedStats {
    /// Counts and logs a value refused at `revision`.
    pub(crate) fn count_refused(&mut self, revision: i64, error: RecordError) {
        match error {
            RecordError::Malformed(why) => {
                self.malformed += 1;
                tracing::warn!(
                    revision,
                    why,
                    "malformed value under the cluster prefix skipped"
                );
            }
            RecordError::UnknownVersion(version) => {
                self.unknown_version += 1;
                tracing::warn!(
                    revision,
                    version,
                    "record of an unknown schema version refused"
                );
            }
            RecordError::Unopenable(why) => {
                self.unopenable += 1;
                tracing::error!(
                    revision,
                    why,
                    "sealed record not applied: it does not open under this process's secret"
                );
            }
        }
    }
}

/// Where a process stands: the last revision it applied and a digest of its
/// rosters at that revision, taken together. Processes at the same revision
/// have equal digests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The revision up to which every change was applied.
    pub applied_revision: i64,
    /// [`DaemonRuntime::roster_digest`](crate::DaemonRuntime::roster_digest)
    /// at that revision.
    pub digest: u64,
    /// What the feed did.
    pub feed: FeedStats,
    /// Times the watcher reconnected to etcd.
    pub reconnects: u64,
}
