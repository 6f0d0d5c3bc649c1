//! Malformed bencode: every case is a typed decode error, and as a request
//! body an error reply under the sender's cookie.

use ng::bencode::{decode, decode_with, DecodeError, Limits};
use ng::{encode_reply, parse_request, parse_request_with, RequestError};

const OFFER: &[u8] =
    b"d7:command5:offer7:call-id3:abc8:from-tag2:ft3:sdp5:v=0\r\n5:flagsl13:trust-addressee";

fn error_of(body: &[u8]) -> RequestError {
    let mut d = b"42_7 ".to_vec();
    d.extend_from_slice(body);
    let (cookie, err) = parse_request(&d).unwrap_err();
    let cookie = cookie.expect("the cookie was readable");
    assert_eq!(cookie.as_bytes(), b"42_7");
    let reply = encode_reply(cookie, &err.clone().into());
    assert!(
        reply.starts_with(b"42_7 d12:error-reason"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(reply.ends_with(b"6:result5:errore"));
    err.request_error().cloned().unwrap()
}

#[test]
fn the_sample_offer_is_valid() {
    let mut d = b"42_7 ".to_vec();
    d.extend_from_slice(OFFER);
    assert!(parse_request(&d).is_ok());
}

#[test]
fn every_truncation_is_an_error_reply() {
    for cut in 0..OFFER.len() {
        let e = error_of(&OFFER[..cut]);
        assert!(
            matches!(
                e,
                RequestError::Bencode(
                    DecodeError::UnexpectedEnd { .. } | DecodeError::LengthExceedsInput { .. }
                )
            ),
            "cut at {cut}: {e:?}"
        );
    }
}

#[test]
fn wrong_string_lengths() {
    // Declared shorter than the text: the rest is garbage where a value is due…
    assert_eq!(
        decode(b"d2:abc1:xe"),
        Err(DecodeError::UnexpectedByte {
            offset: 5,
            byte: b'c'
        })
    );
    // …or where a key is due.
    assert_eq!(
        decode(b"d1:a1:xyz1:be"),
        Err(DecodeError::NonStringKey { offset: 7 })
    );
    // Declared longer than the input.
    assert_eq!(
        decode(b"5:abc"),
        Err(DecodeError::LengthExceedsInput {
            offset: 0,
            length: 5
        })
    );
    assert_eq!(
        error_of(b"d7:command5:pinge"),
        RequestError::Bencode(DecodeError::UnexpectedEnd { offset: 17 })
    );
    // Leading zeros and missing colon.
    assert_eq!(
        decode(b"03:abc"),
        Err(DecodeError::InvalidLength { offset: 0 })
    );
    assert_eq!(
        decode(b"3abc"),
        Err(DecodeError::InvalidLength { offset: 0 })
    );
    assert_eq!(decode(b"0:"), Ok(ng::bencode::Value::Bytes(b"")));
}

#[test]
fn huge_lengths_are_refused_without_allocating() {
    assert_eq!(
        decode(b"4294967296:x"),
        Err(DecodeError::LengthExceedsInput {
            offset: 0,
            length: 4_294_967_296
        })
    );
    assert_eq!(
        decode(b"18446744073709551615:x"),
        Err(DecodeError::LengthExceedsInput {
            offset: 0,
            length: u64::MAX
        })
    );
    assert_eq!(
        decode(b"99999999999999999999:x"),
        Err(DecodeError::LengthExceedsInput {
            offset: 0,
            length: u64::MAX
        })
    );
    assert_eq!(
        decode(b"999999999999999999999:x"),
        Err(DecodeError::InvalidLength { offset: 0 })
    );
    assert!(matches!(
        error_of(b"d7:command999999999:offere"),
        RequestError::Bencode(DecodeError::LengthExceedsInput {
            length: 999_999_999,
            ..
        })
    ));
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    let deep = vec![b'l'; 200_000];
    assert_eq!(decode(&deep), Err(DecodeError::TooDeep { offset: 32 }));
    let mut dicts = Vec::new();
    for _ in 0..100 {
        dicts.extend_from_slice(b"d1:a");
    }
    assert_eq!(decode(&dicts), Err(DecodeError::TooDeep { offset: 128 }));
    let mut body = b"d7:command4:ping1:x".to_vec();
    body.extend(std::iter::repeat_n(b'l', 40));
    body.extend(std::iter::repeat_n(b'e', 41));
    assert_eq!(
        error_of(&body),
        RequestError::Bencode(DecodeError::TooDeep { offset: 50 })
    );
    // Exactly at the limit is fine.
    let ok: Vec<u8> = std::iter::repeat_n(b'l', 32)
        .chain(std::iter::repeat_n(b'e', 32))
        .collect();
    assert!(decode(&ok).is_ok());
}

#[test]
fn non_dictionary_top_levels_are_error_replies() {
    for (body, found) in [
        (&b"i1e"[..], "integer"),
        (b"4:ping", "string"),
        (b"le", "list"),
        (b"l7:commande", "list"),
    ] {
        assert_eq!(error_of(body), RequestError::NotADictionary { found });
    }
    assert_eq!(
        error_of(b""),
        RequestError::Bencode(DecodeError::UnexpectedEnd { offset: 0 })
    );
}

#[test]
fn invalid_integers() {
    for bad in [
        &b"i-0e"[..],
        b"i01e",
        b"ie",
        b"i-e",
        b"i1x2e",
        b"i9223372036854775808e",
        b"i-9223372036854775809e",
        b"i99999999999999999999999e",
    ] {
        assert!(
            matches!(decode(bad), Err(DecodeError::InvalidInteger { offset: 0 })),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        decode(b"i-9223372036854775808e"),
        Ok(ng::bencode::Value::Int(i64::MIN))
    );
    assert_eq!(
        decode(b"i9223372036854775807e"),
        Ok(ng::bencode::Value::Int(i64::MAX))
    );
    assert_eq!(decode(b"i0e"), Ok(ng::bencode::Value::Int(0)));
    assert_eq!(
        decode(b"i12"),
        Err(DecodeError::UnexpectedEnd { offset: 3 })
    );
}

#[test]
fn structural_errors() {
    assert_eq!(
        decode(b"d7:command4:pingei1e"),
        Err(DecodeError::TrailingData { offset: 17 })
    );
    assert_eq!(
        decode(b"di1e1:ae"),
        Err(DecodeError::NonStringKey { offset: 1 })
    );
    assert_eq!(
        decode(b"d1:ae"),
        Err(DecodeError::UnexpectedByte {
            offset: 4,
            byte: b'e'
        })
    );
    assert_eq!(
        decode(b"d1:ai1e1:ai2ee"),
        Err(DecodeError::DuplicateKey { offset: 13 })
    );
    assert_eq!(
        decode(b"e"),
        Err(DecodeError::UnexpectedByte {
            offset: 0,
            byte: b'e'
        })
    );
    assert_eq!(
        decode(b"x"),
        Err(DecodeError::UnexpectedByte {
            offset: 0,
            byte: b'x'
        })
    );
    assert_eq!(
        decode(b"d1:bi1e1:ai2ee").map(|v| v.as_dict().map(|d| d.len())),
        Ok(Some(2)),
        "unsorted keys are accepted"
    );
    assert_eq!(
        error_of(b"d7:command4:pinge\n"),
        RequestError::Bencode(DecodeError::TrailingData { offset: 17 })
    );
}

#[test]
fn size_and_item_limits() {
    let limits = Limits {
        max_input: 64,
        max_depth: 4,
        max_items: 5,
    };
    assert_eq!(
        decode_with(&[b'l'; 65], &limits),
        Err(DecodeError::InputTooLarge { len: 65, max: 64 })
    );
    assert!(decode_with(b"li1ei2ei3ei4ee", &limits).is_ok());
    assert_eq!(
        decode_with(b"li1ei2ei3ei4ei5ee", &limits),
        Err(DecodeError::TooManyItems { offset: 13 })
    );
    let (cookie, err) =
        parse_request_with(b"c_9 d7:command4:ping1:xli1ei2ei3eee", &limits).unwrap_err();
    assert!(cookie.is_some());
    assert!(matches!(
        err.request_error(),
        Some(RequestError::Bencode(DecodeError::TooManyItems { .. }))
    ));
}
