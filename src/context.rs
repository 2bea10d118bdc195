//! The per-request routing context: key, session, zone preference, tag
//! requirements.

use std::fmt;

use crate::hash::{hash_bytes, mix64};

/// A zone or tag named in a context, with its hash precomputed so a route
/// compares integers.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Label {
    hash: u64,
    name: Box<str>,
}

impl Label {
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    fn new(name: &str) -> Self {
        Label {
            hash: hash_bytes(name.as_bytes()),
            name: name.into(),
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

/// What a route may use to choose a member.
///
/// ```
/// use replica_router::RequestContext;
/// let ctx = RequestContext::new()
///     .with_routing_key("user-42")
///     .with_zone("eu-west-1a")
///     .require_tag("ssd");
/// assert!(ctx.routing_key_hash().is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    key_hash: Option<u64>,
    session: Option<u64>,
    zone: Option<Label>,
    tags: Vec<Label>,
}

impl RequestContext {
    /// An empty context: no key, no session, no zone, no tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the routing key `ConsistentHash` keys on. The key is hashed once,
    /// here (xxh3), and not stored, so this never allocates.
    pub fn with_routing_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key_hash = Some(hash_bytes(key.as_ref()));
        self
    }

    /// Sets the session `ConsistentHash` keys on when there is no routing key.
    pub fn with_session(mut self, session: u64) -> Self {
        self.session = Some(session);
        self
    }

    /// Prefers healthy members in `zone`, falling back to any healthy member.
    pub fn with_zone(mut self, zone: &str) -> Self {
        self.zone = Some(Label::new(zone));
        self
    }

    /// Admits only members on nodes tagged `tag` (all required tags, when
    /// called more than once).
    pub fn require_tag(mut self, tag: &str) -> Self {
        let label = Label::new(tag);
        if !self.tags.contains(&label) {
            self.tags.push(label);
        }
        self
    }

    /// The hash `ConsistentHash` uses: the routing key's, else the session's.
    pub fn routing_key_hash(&self) -> Option<u64> {
        self.key_hash.or(self.session.map(mix64))
    }

    /// The session, if one was set.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    pub(crate) fn zone(&self) -> Option<&Label> {
        self.zone.as_ref()
    }

    pub(crate) fn tags(&self) -> &[Label] {
        &self.tags
    }
}
