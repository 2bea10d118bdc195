//! Nodes of the cluster and the capability filter daemons place on them with.

use std::collections::BTreeSet;

/// Default weight of a node (see [`NodeInfo::with_weight`]).
pub const DEFAULT_NODE_WEIGHT: u32 = 100;

/// A node replicas can be placed on: an id, an optional zone, tags and a weight.
///
/// ```
/// use replica_router::NodeInfo;
/// let node = NodeInfo::new(7).with_zone("eu-west-1a").with_tag("gpu").with_weight(200);
/// assert_eq!(node.id(), 7);
/// assert_eq!(node.zone(), Some("eu-west-1a"));
/// assert!(node.has_tag("gpu"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    id: u64,
    zone: Option<String>,
    tags: BTreeSet<String>,
    weight: u32,
}

impl NodeInfo {
    /// A node with no zone, no tags and weight [`DEFAULT_NODE_WEIGHT`].
    pub fn new(id: u64) -> Self {
        NodeInfo {
            id,
            zone: None,
            tags: BTreeSet::new(),
            weight: DEFAULT_NODE_WEIGHT,
        }
    }

    /// Places the node in a zone (placement spreads replicas over zones).
    pub fn with_zone(mut self, zone: &str) -> Self {
        self.zone = Some(zone.to_owned());
        self
    }

    /// Adds a tag (for [`CapabilityFilter`] and `RequestContext::require_tag`).
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.tags.insert(tag.to_owned());
        self
    }

    /// Sets the weight the weighted strategies give every replica on this node.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The node id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The zone, if one was set.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The node's tags, in order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(String::as_str)
    }

    /// Whether the node carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }

    /// The node's weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// The tags a node must carry to host a daemon (see `MeshDaemon::requirements`).
///
/// ```
/// use replica_router::{CapabilityFilter, NodeInfo};
/// let filter = CapabilityFilter::new().require_tag("gpu");
/// assert!(filter.matches(&NodeInfo::new(1).with_tag("gpu")));
/// assert!(!filter.matches(&NodeInfo::new(2)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityFilter {
    tags: BTreeSet<String>,
}

impl CapabilityFilter {
    /// A filter every node passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires nodes to carry `tag`.
    pub fn require_tag(mut self, tag: &str) -> Self {
        self.tags.insert(tag.to_owned());
        self
    }

    /// The required tags.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(String::as_str)
    }

    /// Whether `node` carries every required tag.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        self.tags.iter().all(|t| node.tags.contains(t))
    }
}
