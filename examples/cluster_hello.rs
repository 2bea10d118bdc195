//! A router process of a cluster, in a few lines: join as a node, spawn a
//! group, route an event and deliver it (or learn which node to forward it
//! to), then leave.
//!
//! ```text
//! etcd &                                          # any etcd v3 on localhost:2379
//! head -c 32 /dev/urandom > cluster.secret        # once per cluster, to every process
//! cargo run --features etcd --example cluster_hello -- http://127.0.0.1:2379 cluster.secret
//! REPLICA_ROUTER_SECRET=$(xxd -p -c 32 cluster.secret) \
//!     cargo run --features etcd --example cluster_hello -- http://127.0.0.1:2379
//! ```

use replica_router::cluster::{ClusterOptions, ClusterRuntime};
use replica_router::*;

struct Echo;

impl MeshDaemon for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
}

/// The cluster secret: 32 bytes from a file, or 64 hex digits from the
/// environment. Every process of the cluster needs the same one.
fn cluster_secret(file: Option<&str>) -> Result<[u8; 32], Box<dyn std::error::Error>> {
    let bytes = match file {
        Some(path) => std::fs::read(path)?,
        None => {
            let hex = std::env::var("REPLICA_ROUTER_SECRET")?;
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()?
        }
    };
    bytes
        .try_into()
        .map_err(|_| "the cluster secret must be 32 bytes".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args.get(1).map_or("http://127.0.0.1:2379", String::as_str);
    let options = ClusterOptions::new(endpoint, "/replica-router-hello")
        .with_secret(cluster_secret(args.get(2).map(String::as_str))?);

    let process = ClusterRuntime::join(options, NodeInfo::new(1).with_zone("a"), |rt| {
        rt.register_factory("echo", || Box::new(Echo))
    })?;
    let group = process.spawn_group("echo", [7; 32], 1, Strategy::RoundRobin)?;

    let origin = group.route_event(&RequestContext::new().with_routing_key("user-42"))?;
    match process.runtime().deliver(origin, &Event::new("hello")) {
        Ok(outputs) => println!("delivered here: {outputs:?}"),
        Err(DeliverError::HostedElsewhere { node_id, .. }) => println!("forward to node {node_id}"),
        Err(e) => return Err(e.into()),
    }
    println!("status: {:?}", process.status());

    process.remove_group(group.group_id())?;
    process.leave();
    Ok(())
}
