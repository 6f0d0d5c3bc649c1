//! Fuzz target: `ng::bencode::decode` and `ng::parse_request` on arbitrary
//! bytes (one ng datagram, or a bare bencode value).
//!
//! Invariants:
//! * **bencode round trip.** When `decode` succeeds, `encode` of the value
//!   decodes to an equal value (dictionaries compared as key sets: the
//!   encoder sorts keys, the decoder keeps the order sent); the encoding has
//!   the input's length (the strict decoder leaves no freedom but key
//!   order), equals the input when every dictionary arrived sorted, and is a
//!   fixed point (encoding the re-decoded value gives the same bytes). Error
//!   offsets lie within the input. Byte strings borrow from the input.
//! * **parse_request** never panics. `Ok`: the cookie is the bytes before
//!   the first space, the dictionary is the decoded body, the command's
//!   required keys are present, typed fields agree with the raw dictionary;
//!   a reply (`pong`/`ok`/`sdp`) encodes under the cookie and decodes.
//!   `Err` with a cookie: that cookie is valid and is the datagram's prefix,
//!   and `encode_reply(cookie, &error.into())` is `cookie SP` + a dictionary
//!   with `result` = `error` and `error-reason` = the error's reason. `Err`
//!   without a cookie: the datagram has no space or an invalid cookie.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ng::bencode::{decode, encode, DecodeError, Value};
use ng::{encode_reply, parse_request, Command, Cookie, Reply, MAX_COOKIE_LEN};

fn inside(data: &[u8], part: &[u8]) -> bool {
    let (b, p) = (data.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= b && p + part.len() <= b + data.len())
}

/// Equality with dictionaries compared regardless of entry order.
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}

/// Every dictionary's keys arrived strictly sorted.
fn sorted(v: &Value<'_>) -> bool {
    match v {
        Value::Bytes(_) | Value::Int(_) => true,
        Value::List(l) => l.iter().all(sorted),
        Value::Dict(d) => {
            let keys: Vec<&[u8]> = d.iter().map(|(k, _)| k).collect();
            keys.windows(2).all(|w| w[0] < w[1]) && d.iter().all(|(_, v)| sorted(v))
        }
    }
}

/// Every byte string (and key) borrows from `data`; keys are unique.
fn borrows(data: &[u8], v: &Value<'_>) -> bool {
    match v {
        Value::Bytes(b) => inside(data, b),
        Value::Int(_) => true,
        Value::List(l) => l.iter().all(|x| borrows(data, x)),
        Value::Dict(d) => {
            let keys: Vec<&[u8]> = d.iter().map(|(k, _)| k).collect();
            let mut uniq = keys.clone();
            uniq.sort();
            uniq.dedup();
            uniq.len() == keys.len()
                && d.iter().all(|(k, x)| inside(data, k) && borrows(data, x))
        }
    }
}

fn error_offset(e: &DecodeError) -> Option<usize> {
    Some(match e {
        DecodeError::UnexpectedEnd { offset }
        | DecodeError::UnexpectedByte { offset, .. }
        | DecodeError::InvalidInteger { offset }
        | DecodeError::InvalidLength { offset }
        | DecodeError::LengthExceedsInput { offset, .. }
        | DecodeError::NonStringKey { offset }
        | DecodeError::DuplicateKey { offset }
        | DecodeError::TooDeep { offset }
        | DecodeError::TooManyItems { offset }
        | DecodeError::TrailingData { offset } => *offset,
        _ => return None,
    })
}

fn check_bencode(data: &[u8]) {
    match decode(data) {
        Ok(v) => {
            assert!(borrows(data, &v), "decoded value does not borrow from the input or has duplicate keys");
            let enc = encode(&v);
            assert_eq!(enc.len(), data.len(), "encoding length differs from the input: {v:?}");
            if sorted(&v) {
                assert_eq!(enc, data, "canonical input does not re-encode to itself");
            }
            let v2 = decode(&enc).unwrap_or_else(|e| panic!("encode output does not decode: {e:?}"));
            assert!(same(&v, &v2), "round trip changed the value: {v:?} vs {v2:?}");
            assert!(sorted(&v2), "encoder wrote unsorted keys");
            assert_eq!(encode(&v2), enc, "encoding is not a fixed point");
        }
        Err(e) => {
            if let Some(off) = error_offset(&e) {
                assert!(off <= data.len(), "{e:?} offset past the {}-byte input", data.len());
            }
            let _ = e.to_string();
        }
    }
}

/// Splits an encoded reply at its first space and decodes the dictionary.
fn check_reply<'r>(cookie: Cookie<'_>, reply: &'r [u8]) -> ng::bencode::Dict<'r> {
    let c = cookie.as_bytes();
    assert!(reply.len() > c.len() + 1 && reply.starts_with(c) && reply[c.len()] == b' ');
    match decode(&reply[c.len() + 1..]) {
        Ok(Value::Dict(d)) => d,
        other => panic!("reply body is not a dictionary: {other:?}"),
    }
}

fn check_request(data: &[u8]) {
    let space = data.iter().position(|b| *b == b' ');
    let valid_cookie = space.is_some_and(|s| {
        s >= 1 && s <= MAX_COOKIE_LEN && data[..s].iter().all(u8::is_ascii_graphic)
    });
    match parse_request(data) {
        Ok(r) => {
            let s = space.expect("request without a space");
            assert!(valid_cookie);
            assert_eq!(r.cookie.as_bytes(), &data[..s]);
            let body = &data[s + 1..];
            let Ok(Value::Dict(d)) = decode(body) else {
                panic!("request accepted but its body is not a dictionary");
            };
            assert_eq!(r.dict(), &d);
            for (k, v) in r.unknown_keys() {
                assert_eq!(d.get(k.as_bytes()), Some(v));
            }
            let need: &[bool] = match r.command {
                Command::Ping | Command::List => &[],
                Command::Offer => &[r.sdp.is_some(), r.call_id.is_some(), r.from_tag.is_some()],
                Command::Answer => &[
                    r.sdp.is_some(),
                    r.call_id.is_some(),
                    r.from_tag.is_some(),
                    r.to_tag.is_some(),
                ],
                Command::Delete | Command::Query => &[r.call_id.is_some()],
            };
            assert!(need.iter().all(|x| *x), "{:?} accepted without a required key", r.command);
            for b in [&r.call_id, &r.from_tag, &r.to_tag, &r.via_branch, &r.sdp].into_iter().flatten() {
                assert!(inside(data, b.as_bytes()));
            }
            if let Some(rf) = &r.received_from {
                let _ = rf.ip();
            }
            let _ = r.command.as_str();
            // Replies encode under the cookie and decode.
            let reply = match r.command {
                Command::Ping => Reply::Pong,
                Command::Offer | Command::Answer => Reply::sdp(r.sdp.as_ref().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
                _ => Reply::ok(),
            };
            let enc = encode_reply(r.cookie, &reply);
            let d = check_reply(r.cookie, &enc);
            assert!(d.get(b"result").is_some());
            if let Reply::Sdp { sdp, .. } = &reply {
                assert_eq!(d.get(b"sdp").and_then(Value::as_bytes), Some(&sdp[..]));
            }
        }
        Err((Some(cookie), err)) => {
            let s = space.expect("cookie without a space");
            assert!(valid_cookie, "invalid cookie returned");
            assert_eq!(cookie.as_bytes(), &data[..s]);
            let reason = err.reason().to_owned();
            assert!(!reason.is_empty());
            let enc = encode_reply(cookie, &err.into());
            let d = check_reply(cookie, &enc);
            assert_eq!(d.get(b"result").and_then(Value::as_bytes), Some(&b"error"[..]));
            assert_eq!(
                d.get(b"error-reason").and_then(Value::as_bytes),
                Some(reason.as_bytes())
            );
            assert_eq!(d.len(), 2);
        }
        Err((None, _)) => {
            assert!(!valid_cookie, "valid cookie not returned with the error");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_bencode(data);
    check_request(data);
    // The body of a datagram as a bare value too.
    if let Some(s) = data.iter().position(|b| *b == b' ') {
        check_bencode(&data[s + 1..]);
    }
});
