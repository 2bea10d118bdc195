//! Node processes: the harness re-executes itself with `--child-node`, and
//! reads the `STATUS` lines each child prints.

use std::process::{Command, ExitCode};
use std::time::Duration;

use replica_router::cluster::ClusterRuntime;
use replica_router::NodeInfo;
use replica_router_testkit::process::{report_status, ReportingProcess};

use crate::{cluster_options, register, zone};

/// A node process: joins, then reports `STATUS <revision> <digest> <applied>
/// <duplicates> <restored_from>` every 10 ms until stdin closes.
pub(crate) fn child(node: u64, etcd: &str, prefix: &str) -> ExitCode {
    let options = cluster_options(etcd, prefix);
    let info = NodeInfo::new(node).with_zone(&zone(node));
    let process = match ClusterRuntime::join(options, info, register) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("node {node}: {e}");
            return ExitCode::FAILURE;
        }
    };
    report_status(Duration::from_millis(10), || {
        let st = process.status();
        let feed = st.feed;
        vec![
            st.applied_revision.max(0) as u64,
            st.digest,
            feed.events_applied,
            feed.duplicates_skipped,
            feed.restored_from.max(0) as u64,
        ]
    });
    ExitCode::SUCCESS
}

/// What a node process reports.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Status {
    pub(crate) revision: i64,
    pub(crate) digest: u64,
    pub(crate) applied: u64,
    pub(crate) duplicates: u64,
    pub(crate) restored_from: i64,
}

/// A node process seen from the coordinator.
pub(crate) struct NodeProcess {
    pub(crate) id: u64,
    process: ReportingProcess,
}

impl NodeProcess {
    pub(crate) fn start(etcd: &str, prefix: &str, id: u64) -> std::io::Result<NodeProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args([
            "--child-node",
            &id.to_string(),
            "--etcd",
            etcd,
            "--prefix",
            prefix,
        ]);
        Ok(NodeProcess {
            id,
            process: ReportingProcess::start(&mut command)?,
        })
    }

    pub(crate) fn status(&self) -> Option<Status> {
        let [revision, digest, applied, duplicates, restored_from] = self.process.last_array()?;
        Some(Status {
            revision: revision as i64,
            digest,
            applied,
            duplicates,
            restored_from: restored_from as i64,
        })
    }

    pub(crate) fn sigkill(&mut self) {
        self.process.kill();
    }
}
