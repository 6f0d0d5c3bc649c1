//! Every input the fuzzers found (fuzz/regressions/) stays fixed, checked
//! with the same invariants as the fuzz targets, on stable Rust.

use std::path::PathBuf;

use bytes::Bytes;
use sip::{error_response, inspect, Frame, Message, Policy, StreamFramer, Verdict};

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn sip_message_regressions() {
    let inputs = regressions("sip_message");
    assert!(inputs.len() >= 7);
    for (name, data) in inputs {
        let raw = Bytes::from(data);
        if let Ok(m) = Message::parse(raw.clone()) {
            assert_eq!(Message::parse(m.to_bytes()).as_ref(), Ok(&m), "{name}");
            // Editing keeps the message printable and parseable.
            let mut e = m.clone();
            let _ = e.remove_first_value(sip::HeaderName::Via);
            e.push_header("X-Edit", b"1").unwrap();
            let p = Message::parse(e.to_bytes()).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(p.header_by_name("X-Edit"), Some(&b"1"[..]), "{name}");
        }
        if let Verdict::Reply(err) = inspect(raw.clone(), &Policy::default()) {
            let resp = error_response(&raw, &err, "t", None)
                .unwrap_or_else(|| panic!("{name}: Reply without a response"));
            let r = Message::parse(resp).unwrap();
            assert_eq!(r.status(), Some(err.status()), "{name}");
            if err.status() == 420 {
                let u = r.header(sip::HeaderName::Unsupported).unwrap();
                assert!(!u.is_empty(), "{name}: empty Unsupported");
            }
        }
    }
}

#[test]
fn sip_stream_framing_regressions() {
    for (name, data) in regressions("sip_stream_framing") {
        let mut f = StreamFramer::new(4096);
        f.push(&data);
        while let Ok(Some(frame)) = f.next_frame() {
            if let Frame::Message(m) = frame {
                // Framer and parser agree on where the message ends.
                if let Ok(msg) = Message::parse(m.clone()) {
                    let lead = m.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
                    assert_eq!(msg.to_bytes().len() + lead, m.len(), "{name}");
                }
            }
        }
    }
}
