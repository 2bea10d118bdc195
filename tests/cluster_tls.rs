//! TLS and authentication against a real etcd started with
//! `--client-cert-auth` and auth enabled (issue 14, point 3). The test makes
//! its own certificates with rcgen. A wrong CA, client certificate or
//! password is a typed error within the timeout, never a hang.

mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use replica_router::cluster::{ClusterError, ClusterOptions, ClusterRuntime};
use replica_router::*;
use replica_router_testkit::etcd::{EtcdConfig, LocalEtcd, ServerTls};

struct Authority {
    cert: Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Authority { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `name` (also valid for 127.0.0.1), and its key.
    fn issue(&self, name: &str) -> (String, String) {
        let sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

const PASSWORD: &str = "correct horse";

/// An etcd serving TLS, requiring client certificates from `ca`, with auth
/// enabled and a `root` user.
struct Secured {
    etcd: LocalEtcd,
    ca: Authority,
    client: (String, String),
}

impl Secured {
    fn start() -> Secured {
        let ca = Authority::new("replica-router test CA");
        let (cert_pem, key_pem) = ca.issue("etcd");
        let etcd = LocalEtcd::start_with(EtcdConfig {
            tls: Some(ServerTls {
                cert_pem,
                key_pem,
                client_ca_pem: ca.pem(),
            }),
            ..EtcdConfig::default()
        })
        .unwrap();
        let client = ca.issue("root");
        let secured = Secured { etcd, ca, client };
        secured.enable_auth();
        secured
    }

    fn enable_auth(&self) {
        let tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(self.ca.pem()))
            .identity(etcd_client::Identity::from_pem(
                &self.client.0,
                &self.client.1,
            ));
        let endpoint = self.etcd.endpoint();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let options = etcd_client::ConnectOptions::new().with_tls(tls);
                let mut c = etcd_client::Client::connect([endpoint], Some(options))
                    .await
                    .unwrap();
                c.user_add("root", PASSWORD, None).await.unwrap();
                c.user_grant_role("root", "root").await.unwrap();
                c.auth_enable().await.unwrap();
            });
    }

    /// Options with the right CA, client certificate and password.
    fn options(&self, prefix: &str) -> ClusterOptions {
        options(&self.etcd, prefix, 0)
            .with_tls(self.ca.pem())
            .with_client_identity(&self.client.0, &self.client.1)
            .with_user("root", PASSWORD)
            .with_timeout(Duration::from_secs(2))
    }
}

/// `observe` with `options` fails with a typed error within the timeout.
fn refused(options: ClusterOptions) -> ClusterError {
    let started = Instant::now();
    let err = ClusterRuntime::observe(options, register).unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    err
}

#[test]
fn a_cluster_works_over_tls_with_client_certificates_and_a_password() {
    let secured = Secured::start();
    let prefix = "/tls";
    let node = ClusterRuntime::join(secured.options(prefix), NodeInfo::new(1), register).unwrap();
    let observer = ClusterRuntime::observe(secured.options(prefix), register).unwrap();
    let group = observer
        .spawn_group("echo", [5; 32], 1, Strategy::RoundRobin)
        .unwrap();
    let now = observer.etcd_revision().unwrap();
    assert!(node.wait_for_revision(now, Duration::from_secs(5)));
    let origin = group.route_event(&RequestContext::new()).unwrap();
    assert_eq!(
        node.runtime().deliver(origin, &Event::new("hi")).unwrap(),
        vec![bytes::Bytes::from("hi")]
    );
    assert_eq!(node.status().digest, observer.status().digest);
    node.leave();
}

#[test]
fn a_wrong_ca_is_a_typed_tls_error_within_the_timeout() {
    let secured = Secured::start();
    let stranger = Authority::new("someone else's CA");
    let err = refused(secured.options("/tls").with_tls(stranger.pem()));
    assert!(matches!(err, ClusterError::Tls { .. }), "{err:?}");
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_within_the_timeout() {
    let secured = Secured::start();
    let (cert, key) = Authority::new("someone else's CA").issue("root");
    let err = refused(secured.options("/tls").with_client_identity(cert, key));
    assert!(
        matches!(
            err,
            ClusterError::Tls { .. } | ClusterError::Unreachable { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_wrong_password_is_a_typed_auth_error_within_the_timeout() {
    let secured = Secured::start();
    let err = refused(secured.options("/tls").with_user("root", "wrong"));
    assert!(
        matches!(&err, ClusterError::AuthFailed { user, .. } if user == "root"),
        "{err:?}"
    );
}
