//! Connection settings and the one pure function that turns them into a librdkafka
//! [`ClientConfig`].
//!
//! Every client the tool creates (admin, producer, consumer) starts from [`client_config`], so
//! security settings are decided in exactly one place and can be unit-tested without a broker.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::error::{Error, Result};

/// `security.protocol` values the tool accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No authentication, no encryption.
    Plaintext,
    /// SASL authentication without encryption (the tutorial's Charmed Kafka).
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
    /// TLS, optionally with a client certificate.
    Ssl,
}

impl SecurityProtocol {
    /// The value librdkafka expects.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
            SecurityProtocol::Ssl => "SSL",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether the protocol runs over TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::SaslSsl | SecurityProtocol::Ssl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sasl.mechanism` values the tool accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SaslMechanism {
    /// SCRAM with SHA-512, what Charmed Kafka uses.
    #[default]
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// SCRAM with SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Plain user name and password.
    #[value(name = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    /// The value librdkafka expects.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret string that never prints itself: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to librdkafka only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// One `-X key=value` librdkafka property. Its `Debug` hides the value of a secret property.
#[derive(Clone, PartialEq, Eq)]
pub struct Override {
    /// The librdkafka property name.
    pub key: String,
    /// Its value, handed to librdkafka as is.
    pub value: String,
}

impl Override {
    /// Whether the property holds a secret (a password, a key, a client secret), which must never
    /// be printed.
    pub fn is_secret(&self) -> bool {
        is_secret_property(&self.key)
    }
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.is_secret() { "***" } else { &self.value };
        write!(f, "{}={value}", self.key)
    }
}

/// Whether a librdkafka property holds a secret: `sasl.password`, `ssl.key.password`,
/// `ssl.keystore.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`, …
pub fn is_secret_property(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("jaas")
        || matches!(
            key.as_str(),
            "ssl.key.pem" | "ssl_key" | "sasl.oauthbearer.config"
        )
}

/// How to reach and authenticate to the cluster; shared by every subcommand.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Explicit protocol; `None` means SASL_PLAINTEXT with a username, PLAINTEXT without.
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL mechanism when the protocol uses SASL.
    pub sasl_mechanism: SaslMechanism,
    /// SASL user name.
    pub username: Option<String>,
    /// SASL password.
    pub password: Option<Secret>,
    /// PEM file with the CA certificate(s) to trust.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM client key (mutual TLS).
    pub key_file: Option<PathBuf>,
    /// Raw librdkafka properties (`-X key=value`), applied last.
    pub overrides: Vec<Override>,
    /// How long start-up may take to reach the cluster before giving up with exit code 2.
    pub connect_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            bootstrap_servers: "localhost:9092".to_owned(),
            security_protocol: None,
            sasl_mechanism: SaslMechanism::default(),
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            overrides: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionSettings {
    /// The protocol actually used: the explicit one, or the default implied by a username.
    pub fn effective_protocol(&self) -> SecurityProtocol {
        self.security_protocol
            .unwrap_or(if self.username.is_some() {
                SecurityProtocol::SaslPlaintext
            } else {
                SecurityProtocol::Plaintext
            })
    }
}

/// Parses one `-X key=value` argument. A malformed one is not echoed: it may hold a secret.
pub fn parse_override(arg: &str) -> std::result::Result<Override, String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(Override {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        }),
        Some(_) => Err(
            "expected KEY=VALUE (a librdkafka property), got an entry that starts \
                        with '=' (not shown: it may hold a secret)"
                .to_owned(),
        ),
        None => Err(format!(
            "expected KEY=VALUE (a librdkafka property), got an entry of {} characters without \
             '=' (not shown: it may hold a secret); separate several KTA_X entries with ';'",
            arg.chars().count()
        )),
    }
}

/// Every entry of a bootstrap list is `HOST:PORT` with a port from 1 to 65535 (IPv6 as
/// `[ADDR]:PORT`).
pub fn check_bootstrap_servers(list: &str) -> std::result::Result<(), String> {
    for entry in list.split(',').map(str::trim) {
        let fix = "give HOST:PORT, comma-separated (--bootstrap-servers or KTA_BOOTSTRAP_SERVERS)";
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(format!("bootstrap server '{entry}' has no port; {fix}"));
        };
        if host.is_empty() || host.contains("//") {
            return Err(format!(
                "bootstrap server '{entry}' is not HOST:PORT; {fix}"
            ));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(format!(
                    "bootstrap server '{entry}' has port '{port}', not a number from 1 to 65535; \
                     {fix}"
                ))
            }
        }
    }
    Ok(())
}

/// Builds the librdkafka configuration every client starts from.
///
/// Checks that the settings are coherent (SASL needs a username and a password, a client
/// certificate needs its key, files exist) so that mistakes are reported before any connection
/// attempt, with the option to fix.
pub fn client_config(settings: &ConnectionSettings) -> Result<ClientConfig> {
    let protocol = settings.effective_protocol();
    if settings.bootstrap_servers.trim().is_empty() {
        return Err(Error::Usage(
            "no bootstrap servers given; pass --bootstrap-servers HOST:PORT (or KTA_BOOTSTRAP_SERVERS)"
                .to_owned(),
        ));
    }
    check_bootstrap_servers(&settings.bootstrap_servers).map_err(Error::Usage)?;

    let mut config = ClientConfig::new();
    // librdkafka's log lines up to Info reach the client context: some connection failures
    // ("connection closed by peer": a listener that wants SASL or TLS) are only logged, and
    // they name the cause the one error line should give (the lines stay off the log unless
    // KTA_LOG names librdkafka).
    config.set_log_level(rdkafka::config::RDKafkaLogLevel::Info);
    config
        .set("bootstrap.servers", settings.bootstrap_servers.trim())
        .set("client.id", "kafka-test-app")
        // Statistics every second tell whether a broker connection is up (for /readyz).
        .set("statistics.interval.ms", "1000")
        .set("security.protocol", protocol.as_str());

    if protocol.uses_sasl() {
        // -X sasl.username / sasl.password (KTA_X) count as given; they are applied below.
        let given = |key: &str| settings.overrides.iter().any(|o| o.key == key);
        let username_given = settings.username.is_some() || given("sasl.username");
        let password_given = settings.password.is_some() || given("sasl.password");
        if !(username_given && password_given) {
            return Err(Error::Usage(format!(
                "{protocol} needs a username and a password; pass --username and --password \
                 (or KTA_USERNAME and KTA_PASSWORD), or choose --security-protocol PLAINTEXT"
            )));
        }
        config.set("sasl.mechanism", settings.sasl_mechanism.as_str());
        if let Some(username) = &settings.username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &settings.password {
            config.set("sasl.password", password.expose());
        }
    } else if settings.username.is_some() || settings.password.is_some() {
        return Err(Error::Usage(format!(
            "a username or password was given but --security-protocol is {protocol}, which does \
             not authenticate; use SASL_PLAINTEXT or SASL_SSL"
        )));
    }

    let tls_files = [
        ("--ca-file", &settings.ca_file, "ssl.ca.location"),
        (
            "--cert-file",
            &settings.cert_file,
            "ssl.certificate.location",
        ),
        ("--key-file", &settings.key_file, "ssl.key.location"),
    ];
    for (option, path, property) in tls_files {
        let Some(path) = path else { continue };
        if !protocol.uses_tls() {
            return Err(Error::Usage(format!(
                "{option} was given but --security-protocol is {protocol}, which does not use \
                 TLS; use SSL or SASL_SSL"
            )));
        }
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "{option} {}: no such file; give the path of a PEM file",
                path.display()
            )));
        }
        config.set(property, path.to_string_lossy());
    }
    if settings.cert_file.is_some() != settings.key_file.is_some() {
        return Err(Error::Usage(
            "--cert-file and --key-file go together (mutual TLS needs both)".to_owned(),
        ));
    }
    if protocol.uses_tls() {
        // Like the original client (ssl_check_hostname=False): Charmed Kafka advertises
        // addresses that its certificates do not always name.
        config.set("ssl.endpoint.identification.algorithm", "none");
    }

    for Override { key, value } in &settings.overrides {
        config.set(key, value);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scram() -> ConnectionSettings {
        ConnectionSettings {
            bootstrap_servers: "kafka-k8s-0.kafka-k8s-endpoints:9092".into(),
            username: Some("relation-9".into()),
            password: Some(Secret::new("s3cret-password")),
            ..Default::default()
        }
    }

    #[test]
    fn username_implies_sasl_plaintext_with_scram_sha_512() {
        let config = client_config(&scram()).unwrap();
        assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("relation-9"));
        assert_eq!(config.get("sasl.password"), Some("s3cret-password"));
        assert_eq!(
            config.get("bootstrap.servers"),
            Some("kafka-k8s-0.kafka-k8s-endpoints:9092")
        );
    }

    #[test]
    fn no_username_means_plaintext_without_sasl() {
        let config = client_config(&ConnectionSettings::default()).unwrap();
        assert_eq!(config.get("security.protocol"), Some("PLAINTEXT"));
        assert_eq!(config.get("sasl.mechanism"), None);
        assert_eq!(config.get("sasl.username"), None);
    }

    #[test]
    fn sasl_without_password_is_a_usage_error() {
        let settings = ConnectionSettings {
            password: None,
            ..scram()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert_eq!(
            err,
            "SASL_PLAINTEXT needs a username and a password; pass --username and --password \
             (or KTA_USERNAME and KTA_PASSWORD), or choose --security-protocol PLAINTEXT"
        );
    }

    #[test]
    fn credentials_with_plaintext_are_refused() {
        let settings = ConnectionSettings {
            security_protocol: Some(SecurityProtocol::Plaintext),
            ..scram()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert!(err.contains("does not authenticate"), "{err}");
        assert!(!err.contains("s3cret-password"));
    }

    #[test]
    fn sasl_ssl_with_ca_sets_tls_properties() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let settings = ConnectionSettings {
            security_protocol: Some(SecurityProtocol::SaslSsl),
            sasl_mechanism: SaslMechanism::ScramSha256,
            ca_file: Some(ca.path().to_owned()),
            ..scram()
        };
        let config = client_config(&settings).unwrap();
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(
            config.get("ssl.ca.location"),
            Some(ca.path().to_str().unwrap())
        );
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
    }

    #[test]
    fn missing_ca_file_names_the_option() {
        let settings = ConnectionSettings {
            security_protocol: Some(SecurityProtocol::Ssl),
            username: None,
            password: None,
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert_eq!(
            err,
            "--ca-file /nonexistent/ca.pem: no such file; give the path of a PEM file"
        );
    }

    #[test]
    fn ca_file_with_plaintext_is_refused() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let settings = ConnectionSettings {
            ca_file: Some(ca.path().to_owned()),
            ..scram()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert!(err.starts_with("--ca-file was given but --security-protocol is SASL_PLAINTEXT"));
    }

    #[test]
    fn cert_without_key_is_refused() {
        let cert = tempfile::NamedTempFile::new().unwrap();
        let settings = ConnectionSettings {
            security_protocol: Some(SecurityProtocol::Ssl),
            cert_file: Some(cert.path().to_owned()),
            ..Default::default()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert_eq!(
            err,
            "--cert-file and --key-file go together (mutual TLS needs both)"
        );
    }

    #[test]
    fn overrides_are_applied_last() {
        let settings = ConnectionSettings {
            overrides: vec![
                parse_override("client.id=mine").unwrap(),
                parse_override("socket.timeout.ms=5000").unwrap(),
            ],
            ..Default::default()
        };
        let config = client_config(&settings).unwrap();
        assert_eq!(config.get("client.id"), Some("mine"));
        assert_eq!(config.get("socket.timeout.ms"), Some("5000"));
    }

    #[test]
    fn empty_bootstrap_servers_is_a_usage_error() {
        let settings = ConnectionSettings {
            bootstrap_servers: " ".into(),
            ..Default::default()
        };
        assert!(client_config(&settings)
            .unwrap_err()
            .to_string()
            .starts_with("no bootstrap servers given"));
    }

    #[test]
    fn secret_never_prints() {
        let settings = scram();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cret-password"), "{debug}");
        assert!(debug.contains("***"));
    }

    #[test]
    fn override_parsing() {
        let parsed = |arg| parse_override(arg).map(|o| (o.key, o.value));
        assert_eq!(
            parsed("linger.ms=20"),
            Ok(("linger.ms".into(), "20".into()))
        );
        assert_eq!(parsed("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_override("linger.ms").is_err());
        assert!(parse_override("=1").is_err());
    }

    #[test]
    fn a_secret_override_never_prints_its_value() {
        let error = parse_override("sasl.password:hunter2").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let secret = parse_override("sasl.password=hunter2").unwrap();
        assert_eq!(format!("{secret:?}"), "sasl.password=***");
        let plain = parse_override("linger.ms=20").unwrap();
        assert_eq!(format!("{plain:?}"), "linger.ms=20");
        for key in [
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(is_secret_property(key), "{key}");
        }
    }
}

/// Which records of transactions a reader is given (librdkafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Only committed records (librdkafka's default): an event of an aborted transaction read
    /// is an *aborted read*.
    #[default]
    ReadCommitted,
    /// Every record, aborted transactions' too: those are counted apart (`aborted_seen`).
    ReadUncommitted,
}

impl Isolation {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

impl std::str::FromStr for Isolation {
    type Err = String;

    fn from_str(arg: &str) -> std::result::Result<Self, String> {
        [Isolation::ReadCommitted, Isolation::ReadUncommitted]
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(arg))
            .ok_or_else(|| {
                format!(
                    "'{arg}' is not an isolation level; give read_committed or read_uncommitted"
                )
            })
    }
}
