//! Scenario tests of the transaction layer on the simulated network. Each
//! test is named after the behaviour it proves and runs in milliseconds of
//! real time, however many seconds of virtual time it covers. One test
//! binary with modules keeps link time down.

mod ack;
mod cancel;
mod network;
mod rfc2543;
mod server;
mod timers;

use std::time::Duration;

use bytes::Bytes;
use sim::{Logged, NetConfig, NodeId, Packet, Sim};
use sip::Message;
use transaction::{ClientKey, Event, ServerKey, TxKey};

/// A UAC at 192.0.2.1:5060 and a UAS at 192.0.2.2:5060.
fn world(seed: u64, net: NetConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed, net);
    let uac = sim.add_node("uac", "192.0.2.1:5060");
    let uas = sim.add_node("uas", "192.0.2.2:5060");
    (sim, uac, uas)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Send times of the requests with this method (from any node).
fn sent(sim: &Sim, method: &str) -> Vec<Duration> {
    sim.packets()
        .iter()
        .filter(|p| p.is_request(method))
        .map(|p| p.sent)
        .collect()
}

/// Responses with this status put on the wire (from any node).
fn responses(sim: &Sim, status: u16) -> Vec<&Packet> {
    sim.packets()
        .iter()
        .filter(|p| p.status() == Some(status))
        .collect()
}

/// Differences between consecutive times.
fn intervals(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Runs until `node` gets a request; returns its key and message.
fn take_request(sim: &mut Sim, node: NodeId) -> (ServerKey, Message) {
    loop {
        match sim.next_event(node, secs(60)) {
            Some(Event::Request { key, msg, .. }) => return (key, msg),
            Some(_) => continue,
            None => panic!("no request arrived"),
        }
    }
}

/// `node` answers `req` (server transaction `key`) with `status`.
fn answer(sim: &mut Sim, node: NodeId, key: ServerKey, req: &Message, status: u16) {
    let reason = match status {
        180 => "Ringing",
        200 => "OK",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    };
    let r = transaction::response_to(req, status, reason, Some("uas-tag")).unwrap();
    sim.respond(node, key, r).unwrap();
}

/// Statuses of the responses delivered to the TU for client transaction `key`.
fn delivered(log: &[Logged], key: ClientKey) -> Vec<u16> {
    log.iter()
        .filter_map(|l| match &l.event {
            Event::Response { key: k, msg } if *k == key => msg.status(),
            _ => None,
        })
        .collect()
}

/// When transaction `key` was removed.
fn terminated_at(log: &[Logged], key: impl Into<TxKey>) -> Option<Duration> {
    let key = key.into();
    log.iter().find_map(|l| match l.event {
        Event::Terminated { key: k } if k == key => Some(l.at),
        _ => None,
    })
}

/// How many events of `node` satisfy `pred`.
fn count(log: &[Logged], pred: impl Fn(&Event) -> bool) -> usize {
    log.iter().filter(|l| pred(&l.event)).count()
}

/// The ACK a UAC core writes for a 2xx (RFC 3261 §13.2.2.4): a new
/// transaction-less request with its own branch, To from the 2xx.
fn ack_for_2xx(invite: &Message, ok: &Message, branch: &str) -> Message {
    let via = invite.top_via().unwrap();
    let text = format!(
        "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/{t} {host}:{port};branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
         CSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n",
        uri = String::from_utf8_lossy(invite.request_uri_raw().unwrap()),
        t = via.transport,
        host = via.host,
        port = via.port.unwrap_or(5060),
        from = String::from_utf8_lossy(invite.header(sip::HeaderName::From).unwrap()),
        to = String::from_utf8_lossy(ok.header(sip::HeaderName::To).unwrap()),
        cid = invite.call_id().unwrap(),
        seq = invite.cseq().unwrap().seq,
    );
    Message::parse(Bytes::from(text)).unwrap()
}
