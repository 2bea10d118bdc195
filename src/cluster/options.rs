//! Where the cluster lives, how to reach it, and the secret its seeds are
//! sealed under.

use std::fmt;
use std::time::Duration;

/// The cluster secret: every process of a cluster gets the same 32 bytes
/// out of band (a file, an environment variable, a secret store). Group
/// seeds reach etcd only sealed under it. Its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret([u8; 32]);

impl ClusterSecret {
    /// The secret `bytes`.
    pub fn new(bytes: [u8; 32]) -> Self {
        ClusterSecret(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

/// TLS material, PEM-encoded: the CA that signed etcd's server certificate
/// and, for etcd's `--client-cert-auth`, this client's certificate and key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificate(s) to trust, PEM.
    pub ca_pem: Option<String>,
    /// The client certificate and its private key, PEM.
    pub identity_pem: Option<(String, String)>,
    /// The server name to expect in etcd's certificate, when it differs
    /// from the endpoint's host.
    pub domain: Option<String>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca", &self.ca_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

/// An etcd user name and password (etcd's `auth enable`). `Debug` hides
/// the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where the cluster's state lives, how to reach it, and how quickly to
/// react. Build it with [`new`](Self::new) and the `with_*` methods; the
/// fields are public so that `ClusterOptions { debounce, ..ClusterOptions::new(..) }`
/// works too.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379` (`https://` with TLS).
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster, e.g. `/replica-router`.
    pub prefix: String,
    /// Lease time to live of a node's registration (etcd counts whole
    /// seconds; default 1 s).
    pub lease_ttl: Duration,
    /// How long a node's key may stay gone before it is declared failed
    /// (default 0). A node back within the window causes no re-placement:
    /// flapping is absorbed, at the cost of failing over this much later.
    pub debounce: Duration,
    /// Longest wait to connect, and for any single etcd request (default 2 s).
    pub timeout: Duration,
    /// The cluster secret (see [`with_secret`](Self::with_secret)).
    pub secret: Option<ClusterSecret>,
    /// TLS material (see [`with_tls`](Self::with_tls)).
    pub tls: Option<TlsMaterial>,
    /// etcd credentials (see [`with_user`](Self::with_user)).
    pub credentials: Option<Credentials>,
    /// A checkpoint is due each time the revision crosses a multiple of
    /// this (default 1,000; at least 1). A joining process replays at most
    /// about this many revisions after the checkpoint it starts from, so
    /// etcd's compaction must keep more than this many revisions.
    pub checkpoint_every: i64,
}

impl ClusterOptions {
    /// Options for `endpoint` under `prefix`, with the defaults above.
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        ClusterOptions {
            endpoints: vec![endpoint.into()],
            prefix: prefix.into().trim_end_matches('/').to_owned(),
            lease_ttl: Duration::from_secs(1),
            debounce: Duration::ZERO,
            timeout: Duration::from_secs(2),
            secret: None,
            tls: None,
            credentials: None,
            checkpoint_every: 1_000,
        }
    }

    /// The cluster secret that seeds and checkpoints are sealed under. Every
    /// process of the cluster needs the same one; without it a process can
    /// follow nothing sealed, and `spawn_group` is refused.
    pub fn with_secret(mut self, secret: [u8; 32]) -> ClusterOptions {
        self.secret = Some(ClusterSecret::new(secret));
        self
    }

    /// Trusts `ca_pem` (PEM) for etcd's server certificate. Use `https://`
    /// endpoints.
    pub fn with_tls(mut self, ca_pem: impl Into<String>) -> ClusterOptions {
        self.tls.get_or_insert_with(TlsMaterial::default).ca_pem = Some(ca_pem.into());
        self
    }

    /// Presents this client certificate and key (PEM) to etcd, for its
    /// `--client-cert-auth`.
    pub fn with_client_identity(
        mut self,
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> ClusterOptions {
        self.tls
            .get_or_insert_with(TlsMaterial::default)
            .identity_pem = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Authenticates as `user` with `password` (etcd's `auth enable`).
    pub fn with_user(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> ClusterOptions {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Sets [`debounce`](Self::debounce).
    pub fn with_debounce(mut self, debounce: Duration) -> ClusterOptions {
        self.debounce = debounce;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> ClusterOptions {
        self.timeout = timeout;
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> ClusterOptions {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`checkpoint_every`](Self::checkpoint_every).
    pub fn with_checkpoint_every(mut self, revisions: i64) -> ClusterOptions {
        self.checkpoint_every = revisions;
        self
    }

    /// Why these options cannot work, if they cannot.
    pub(crate) fn check(&self) -> Result<(), super::ClusterError> {
        let invalid = |why: &str| Err(super::ClusterError::InvalidOptions(why.to_owned()));
        if self.endpoints.is_empty() {
            return invalid("no etcd endpoint");
        }
        if self.prefix.is_empty() {
            return invalid("the prefix must not be empty");
        }
        if self.checkpoint_every < 1 {
            return invalid("checkpoint_every must be at least 1");
        }
        if self.timeout.is_zero() {
            return invalid("the timeout must not be zero");
        }
        Ok(())
    }
}
