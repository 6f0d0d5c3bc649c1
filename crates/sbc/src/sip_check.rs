//! `sbc sip check`: one JSON line per file with the verdict the SBC gives it.
//!
//! The verdict comes from [`sip::inspect`] — the code path the daemon uses
//! for every message it receives. With `--transport stream` the file is read
//! as the bytes of a TCP/TLS connection and goes through the stream framer
//! first; the first frame (or framing error) decides.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use serde::Serialize;
use sip::{Frame, FramingAction, Policy, StreamFramer, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// Each file is one UDP datagram.
    Udp,
    /// Each file is the byte stream of one TCP or TLS connection.
    Stream,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How the SBC received the bytes.
    #[arg(long, value_enum, default_value = "udp")]
    transport: Transport,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 65_535)]
    max_message_size: usize,
    /// Message files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    file: &'a str,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<String>,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let mut policy = Policy::default();
    policy.limits.max_message_size = args.max_message_size;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("sbc sip check: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let name = path.to_string_lossy();
        let line = match args.transport {
            Transport::Udp => judge(&name, Bytes::from(data), &policy),
            Transport::Stream => judge_stream(&name, &data, &policy),
        };
        let json = serde_json::to_string(&line).unwrap_or_default();
        if writeln!(out, "{json}").is_err() {
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn kind_str(k: sip::Kind) -> &'static str {
    match k {
        sip::Kind::Request => "request",
        sip::Kind::Response => "response",
    }
}

fn judge<'a>(file: &'a str, data: Bytes, policy: &Policy) -> Line<'a> {
    let peek = sip::peek(&data);
    let mut line = Line {
        file,
        verdict: "accept",
        status: None,
        reason: String::new(),
        kind: peek.kind.map(kind_str),
        method: peek.method,
        call_id: peek.call_id,
    };
    match sip::inspect(data, policy) {
        Verdict::Accept(m) => {
            line.kind = Some(kind_str(m.kind()));
            line.method = m.method_str().map(str::to_owned);
            line.call_id = m.call_id().ok().map(str::to_owned);
            line.reason = "well-formed".to_owned();
        }
        Verdict::Reply(e) => {
            let (status, reason) = e.response().unwrap_or((e.status(), e.to_string()));
            line.verdict = "reply";
            line.status = Some(status);
            line.reason = reason;
        }
        Verdict::Drop(e) => {
            line.verdict = "drop";
            line.reason = e.to_string();
        }
    }
    line
}

fn judge_stream<'a>(file: &'a str, data: &[u8], policy: &Policy) -> Line<'a> {
    let mut framer = StreamFramer::new(policy.limits.max_message_size);
    framer.push(data);
    let drop = |reason: String| {
        let peek = sip::peek(data);
        Line {
            file,
            verdict: "drop",
            status: None,
            reason,
            kind: peek.kind.map(kind_str),
            method: peek.method,
            call_id: peek.call_id,
        }
    };
    loop {
        match framer.next_frame() {
            Ok(Some(Frame::Message(m))) => return judge(file, m, policy),
            Ok(Some(Frame::Ping | Frame::Pong)) => continue,
            Ok(None) => {
                return drop("incomplete message at end of stream; connection closed".to_owned());
            }
            Err(e) => {
                let peek = sip::peek(data);
                let answerable =
                    peek.kind == Some(sip::Kind::Request) && peek.method.as_deref() != Some("ACK");
                return match e.action {
                    FramingAction::RespondAndClose { status, reason } if answerable => Line {
                        file,
                        verdict: "reply",
                        status: Some(status),
                        reason: format!("{reason}; connection closed"),
                        kind: peek.kind.map(kind_str),
                        method: peek.method,
                        call_id: peek.call_id,
                    },
                    _ => drop(format!("framing error ({:?}); connection closed", e.kind)),
                };
            }
        }
    }
}
