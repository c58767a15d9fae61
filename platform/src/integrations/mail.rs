//! SMTP submission (lettre) and IMAP fetching (imap) over blocking sockets with bounded
//! time: a server that does not answer costs a worker [`TIMEOUT`], never a hang. Run these
//! on the blocking pool.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

/// Longest wait for a mail server's answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message fetched whole; bigger ones are filed from their headers alone.
pub const MAX_MESSAGE_BYTES: u32 = 25 * 1024 * 1024;
/// Messages fetched per folder per sync round, so one round stays bounded.
pub const MAX_PER_ROUND: usize = 500;
/// Bytes fetched per folder per sync round (the rest waits for the next round).
pub const MAX_BYTES_PER_ROUND: usize = 64 * 1024 * 1024;

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain first, then STARTTLS (IMAP 143, submission 587); refused if not offered.
    StartTls,
    /// No encryption: only for a server on the same machine or a test.
    None,
}

impl Security {
    pub const ALL: [&'static str; 3] = ["tls", "starttls", "none"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tls" => Some(Self::Tls),
            "starttls" => Some(Self::StartTls),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// Why a send failed; `permanent` (a 5xx reply) is not retried.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub reply: String,
}

fn smtp(server: &Server, login: &Login) -> Result<SmtpTransport, String> {
    let tls = || {
        TlsParameters::new(server.host.clone()).map_err(|e| format!("TLS for {}: {e}", server.host))
    };
    let tls = match server.security {
        Security::Tls => Tls::Wrapper(tls()?),
        Security::StartTls => Tls::Required(tls()?),
        Security::None => Tls::None,
    };
    let mut b = SmtpTransport::builder_dangerous(&server.host)
        .port(server.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    // An empty user name: the server accepts submission without signing in (a relay on
    // the same machine).
    if !login.username.is_empty() {
        b = b.credentials(Credentials::new(
            login.username.clone(),
            login.password.clone(),
        ));
    }
    Ok(b.build())
}

/// Submits one message to its recipients.
pub fn send(server: &Server, login: &Login, message: &lettre::Message) -> Result<(), SendError> {
    let transport = smtp(server, login).map_err(|reply| SendError {
        permanent: true,
        reply,
    })?;
    transport.send(message).map(drop).map_err(|e| SendError {
        permanent: e.is_permanent(),
        reply: smtp_reply(&e),
    })
}

fn smtp_reply(e: &lettre::transport::smtp::Error) -> String {
    // lettre's Display carries the server's own reply text after its prefix.
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Connects, signs in and says goodbye: the server's own error when any step fails.
pub fn test_smtp(server: &Server, login: &Login) -> Result<(), String> {
    let transport = smtp(server, login)?;
    match transport.test_connection() {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "{}:{} accepted the connection but did not answer as an SMTP server.",
            server.host, server.port
        )),
        Err(e) => Err(smtp_reply(&e)),
    }
}

/// A byte stream a session runs over (plain TCP or TLS), whose read timeout IDLE sets.
pub trait Stream: Read + Write + Send {
    fn read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()>;
}
impl Stream for TcpStream {
    fn read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
}
impl Stream for native_tls::TlsStream<TcpStream> {
    fn read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.get_ref().set_read_timeout(t)
    }
}
impl imap::extensions::idle::SetReadTimeout for Box<dyn Stream> {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> imap::Result<()> {
        // After IDLE the crate clears the timeout; a dead server must still not hold the
        // thread forever, so "none" is the usual one.
        self.read_timeout(Some(t.unwrap_or(TIMEOUT)))
            .map_err(imap::Error::Io)
    }
}

pub type Session = imap::Session<Box<dyn Stream>>;

/// What one IDLE wait came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Idle {
    /// The server has something new in the folder.
    Changed,
    /// Nothing happened within the wait.
    Quiet,
    /// The server does not offer IDLE (polling covers it).
    Unsupported,
}

/// Waits on `folder` with IMAP IDLE (RFC 2177) for at most `wait`.
pub fn idle(s: &mut Session, folder: &str, wait: Duration) -> Result<Idle, String> {
    let caps = s.capabilities().map_err(|e| e.to_string())?;
    if !caps.has_str("IDLE") {
        return Ok(Idle::Unsupported);
    }
    s.select(folder).map_err(|e| format!("{folder}: {e}"))?;
    let mut handle = s.idle();
    handle.timeout(wait).keepalive(false);
    let outcome = handle
        .wait_while(imap::extensions::idle::stop_on_any)
        .map_err(|e| e.to_string());
    match outcome {
        Ok(imap::extensions::idle::WaitOutcome::MailboxChanged) => Ok(Idle::Changed),
        Ok(imap::extensions::idle::WaitOutcome::TimedOut) => Ok(Idle::Quiet),
        Err(e) => Err(e),
    }
}

fn tcp(server: &Server) -> Result<TcpStream, String> {
    let addr = (server.host.as_str(), server.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", server.host))?
        .next()
        .ok_or_else(|| format!("{} has no address.", server.host))?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("{}:{}: {e}", server.host, server.port))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

fn tls(server: &Server, s: TcpStream) -> Result<Box<dyn Stream>, String> {
    let connector = native_tls::TlsConnector::new().map_err(|e| e.to_string())?;
    connector
        .connect(&server.host, s)
        .map(|t| Box::new(t) as Box<dyn Stream>)
        .map_err(|e| format!("TLS with {}: {e}", server.host))
}

/// Opens a signed-in IMAP session.
pub fn imap_login(server: &Server, login: &Login) -> Result<Session, String> {
    let s = tcp(server)?;
    let client = match server.security {
        Security::None | Security::Tls => {
            let stream: Box<dyn Stream> = if server.security == Security::Tls {
                tls(server, s)?
            } else {
                Box::new(s)
            };
            let mut c = imap::Client::new(stream);
            c.read_greeting().map_err(|e| format!("greeting: {e}"))?;
            c
        }
        Security::StartTls => {
            // The greeting and STARTTLS are read by hand: the TLS handshake must start on
            // the very socket, before the client takes it over.
            let mut reader = BufReader::new(s);
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let mut s = reader.into_inner();
            s.write_all(b"a0 STARTTLS\r\n").map_err(|e| e.to_string())?;
            let mut reader = BufReader::new(s);
            loop {
                line.clear();
                reader.read_line(&mut line).map_err(|e| e.to_string())?;
                if line.is_empty() {
                    return Err("the server closed the connection at STARTTLS".into());
                }
                if let Some(rest) = line.strip_prefix("a0 ") {
                    if !rest.starts_with("OK") {
                        return Err(format!("STARTTLS refused: {}", rest.trim()));
                    }
                    break;
                }
            }
            imap::Client::new(tls(server, reader.into_inner())?)
        }
    };
    client
        .login(&login.username, &login.password)
        .map_err(|(e, _)| e.to_string())
}

/// Signs in and out again.
pub fn test_imap(server: &Server, login: &Login) -> Result<(), String> {
    let mut s = imap_login(server, login)?;
    s.select("INBOX").map_err(|e| format!("INBOX: {e}"))?;
    let _ = s.logout();
    Ok(())
}

/// What a folder holds beyond what was seen: its UIDVALIDITY and the new messages' raw
/// bytes by UID, oldest first, at most [`MAX_PER_ROUND`].
pub struct Fetched {
    pub uid_validity: i64,
    /// (uid, raw message; headers only when it was too large)
    pub messages: Vec<(i64, Vec<u8>)>,
    /// More new messages wait for the next round.
    pub more: bool,
}

/// Fetches what is new in `folder` since `last` = (UIDVALIDITY, last UID). A different
/// UIDVALIDITY (the server renumbered the folder) starts over; the messages' own
/// Message-IDs keep that from filing anything twice.
pub fn fetch_new(
    s: &mut Session,
    folder: &str,
    last: Option<(i64, i64)>,
) -> Result<Fetched, String> {
    let mailbox = s.examine(folder).map_err(|e| format!("{folder}: {e}"))?;
    let uid_validity = i64::from(mailbox.uid_validity.unwrap_or(0));
    let after = match last {
        Some((v, uid)) if v == uid_validity => uid,
        _ => 0,
    };
    let mut uids: Vec<i64> = s
        .uid_search(format!("UID {}:*", after + 1))
        .map_err(|e| format!("{folder}: {e}"))?
        .into_iter()
        .map(i64::from)
        // `n:*` names the last message even when its UID is below n.
        .filter(|u| *u > after)
        .collect();
    uids.sort_unstable();
    let mut more = uids.len() > MAX_PER_ROUND;
    uids.truncate(MAX_PER_ROUND);
    let mut messages = Vec::with_capacity(uids.len());
    let mut bytes = 0usize;
    for chunk in uids.chunks(50) {
        if bytes > MAX_BYTES_PER_ROUND {
            more = true;
            break;
        }
        let set = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sizes = s
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .map_err(|e| format!("{folder}: {e}"))?;
        let (mut small, mut large) = (Vec::new(), Vec::new());
        for f in sizes.iter() {
            if let Some(uid) = f.uid {
                if f.size.unwrap_or(0) > MAX_MESSAGE_BYTES {
                    large.push(uid.to_string());
                } else {
                    small.push(uid.to_string());
                }
            }
        }
        for (set, query) in [
            (small.join(","), "(UID BODY.PEEK[])"),
            (large.join(","), "(UID BODY.PEEK[HEADER])"),
        ] {
            if set.is_empty() {
                continue;
            }
            let fetches = s
                .uid_fetch(&set, query)
                .map_err(|e| format!("{folder}: {e}"))?;
            for f in fetches.iter() {
                if let (Some(uid), Some(raw)) = (f.uid, f.body().or_else(|| f.header())) {
                    bytes += raw.len();
                    messages.push((i64::from(uid), raw.to_vec()));
                }
            }
        }
    }
    messages.sort_by_key(|(uid, _)| *uid);
    Ok(Fetched {
        uid_validity,
        messages,
        more,
    })
}
