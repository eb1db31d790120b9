//! The syslog sink: RFC 5424 messages, one datagram each over UDP
//! (RFC 5426) or octet-counted over TCP (RFC 6587).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`: PRI is
//! facility × 8 + severity (6, informational, or 4, warning, when the
//! event says `"severity":"warning"`); TIMESTAMP the event's `at_ms` (now
//! without one) in UTC with milliseconds; MSGID the event's `kind`; no
//! structured data; MSG the event JSON.

use std::io;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::{Feed, SinkKind, SyslogTransport, backoff};

/// Events taken from the queue at once at most.
const BATCH: usize = 256;
/// The largest UDP payload over IPv4; a longer message fails.
const MAX_DATAGRAM: usize = 65_507;
/// Retries of one message after a connection or write error.
const RETRIES: u32 = 4;
/// Connecting, or writing one message, at most.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Syslog {
    address: String,
    transport: SyslogTransport,
    app_name: String,
    facility: u8,
    hostname: String,
    procid: String,
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Syslog {
    pub(crate) fn new(kind: &SinkKind) -> Result<Self, String> {
        let SinkKind::Syslog {
            address,
            transport,
            app_name,
            facility,
            hostname,
        } = kind
        else {
            unreachable!("Syslog::new takes a syslog sink");
        };
        if *facility > 23 {
            return Err(format!("facility {facility} is not 0 to 23"));
        }
        if address.rsplit_once(':').is_none() {
            return Err(format!("address {address:?} is not host:port"));
        }
        Ok(Self {
            address: address.clone(),
            transport: *transport,
            app_name: app_name.clone(),
            facility: *facility,
            hostname: hostname.clone(),
            procid: std::process::id().to_string(),
        })
    }

    pub(crate) async fn run(self, mut feed: Feed) {
        let mut link = None;
        while let Some(batch) = feed.next_batch(BATCH, Duration::ZERO).await {
            for event in &batch {
                let message = self.format(event, Utc::now());
                feed.settle(1, self.deliver(&mut link, message).await);
            }
        }
    }

    /// The RFC 5424 message for `event`.
    fn format(&self, event: &str, now: DateTime<Utc>) -> String {
        let fields: Value = serde_json::from_str(event).unwrap_or(Value::Null);
        let severity = if fields["severity"] == "warning" {
            4
        } else {
            6
        };
        let pri = u16::from(self.facility) * 8 + severity;
        let at = fields["at_ms"]
            .as_i64()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let hostname = header_field(&self.hostname, 255);
        let app_name = header_field(&self.app_name, 48);
        let msgid = header_field(fields["kind"].as_str().unwrap_or(""), 32);
        let procid = &self.procid;
        format!("<{pri}>1 {at} {hostname} {app_name} {procid} {msgid} - {event}")
    }

    /// Sends one message, reconnecting and retrying with backoff.
    async fn deliver(&self, link: &mut Option<Link>, message: String) -> Result<(), String> {
        let frame = match self.transport {
            SyslogTransport::Udp if message.len() > MAX_DATAGRAM => {
                return Err(format!("{} bytes do not fit a datagram", message.len()));
            }
            SyslogTransport::Udp => message.into_bytes(),
            SyslogTransport::Tcp => format!("{} {message}", message.len()).into_bytes(),
        };
        let mut attempt = 0;
        loop {
            let sent = tokio::time::timeout(IO_TIMEOUT, self.send(link, &frame)).await;
            let err = match sent {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            *link = None;
            if attempt == RETRIES {
                return Err(format!(
                    "{} to {}: {err}",
                    self.transport_name(),
                    self.address
                ));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    async fn send(&self, link: &mut Option<Link>, frame: &[u8]) -> io::Result<()> {
        let link = match link {
            Some(link) => link,
            None => link.insert(self.connect().await?),
        };
        match link {
            Link::Udp(socket) => socket.send(frame).await.map(drop),
            Link::Tcp(stream) => stream.write_all(frame).await,
        }
    }

    async fn connect(&self) -> io::Result<Link> {
        match self.transport {
            SyslogTransport::Tcp => Ok(Link::Tcp(TcpStream::connect(&self.address).await?)),
            SyslogTransport::Udp => {
                let Some(to) = tokio::net::lookup_host(&self.address).await?.next() else {
                    return Err(io::Error::other("the name has no address"));
                };
                let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(to).await?;
                Ok(Link::Udp(socket))
            }
        }
    }

    fn transport_name(&self) -> &'static str {
        match self.transport {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        }
    }
}

/// A header field as RFC 5424 allows it: printable ASCII without spaces
/// (a space becomes `_`), at most `max` characters, `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let field: String = value
        .chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .filter(char::is_ascii_graphic)
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc_5424() {
        let kind = SinkKind::Syslog {
            address: "127.0.0.1:514".into(),
            transport: SyslogTransport::Udp,
            app_name: "sluice".into(),
            facility: crate::DEFAULT_FACILITY,
            hostname: "".into(),
        };
        let syslog = Syslog::new(&kind).unwrap();
        let event = r#"{"at_ms":1700000000123,"kind":"query started é"}"#;
        let pid = std::process::id();
        assert_eq!(
            syslog.format(event, Utc::now()),
            format!("<86>1 2023-11-14T22:13:20.123Z - sluice {pid} query_started_ - {event}")
        );
        let warning = r#"{"severity":"warning"}"#;
        let now = DateTime::from_timestamp_millis(0).unwrap();
        assert_eq!(
            syslog.format(warning, now),
            format!("<84>1 1970-01-01T00:00:00.000Z - sluice {pid} - - {warning}")
        );
        assert_eq!(header_field(&"k".repeat(40), 32), "k".repeat(32));
    }
}
