//! Property tests for the bencode codec and the request parser.

use std::collections::BTreeMap;

use ng::bencode::{decode, encode, Dict, Value};
use ng::parse_request;
use proptest::prelude::*;

/// An owned value to generate; dictionaries have unique keys.
#[derive(Debug, Clone)]
enum Owned {
    B(Vec<u8>),
    I(i64),
    L(Vec<Owned>),
    D(BTreeMap<Vec<u8>, Owned>),
}

fn owned() -> impl Strategy<Value = Owned> {
    let leaf = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Owned::B),
        any::<i64>().prop_map(Owned::I),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Owned::L),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(Owned::D),
        ]
    })
}

/// The borrowed value, dictionary entries in sorted order (what decoding a
/// canonical encoding yields).
fn view(o: &Owned) -> Value<'_> {
    match o {
        Owned::B(b) => Value::Bytes(b),
        Owned::I(i) => Value::Int(*i),
        Owned::L(l) => Value::List(l.iter().map(view).collect()),
        Owned::D(d) => {
            let mut dict = Dict::new();
            for (k, v) in d {
                dict.insert(k, view(v));
            }
            Value::Dict(dict)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(o in owned()) {
        let v = view(&o);
        let bytes = encode(&v);
        let back = decode(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode(&back), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_values_re_encode(input in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = decode(&input) {
            let again = encode(&v);
            let v2 = decode(&again).unwrap();
            // Same content; only dictionary order may differ (sorted now).
            prop_assert_eq!(encode(&v2), again.clone());
            if is_sorted(&v) {
                prop_assert_eq!(again, input);
            }
        }
    }

    #[test]
    fn mutated_requests_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut d = b"1_2_3 d3:sdp5:v=0\r\n5:flagsl13:trust-addresse7:replacel6:origine7:call-id1:c8:from-tag1:f7:command5:offere".to_vec();
        for (i, b) in flips {
            let at = i.index(d.len());
            d[at] = b;
        }
        d.truncate(cut.index(d.len() + 1));
        match parse_request(&d) {
            Ok(r) => prop_assert!(d.starts_with(r.cookie.as_bytes())),
            Err((Some(c), e)) => {
                prop_assert!(d.starts_with(c.as_bytes()));
                prop_assert!(!e.reason().is_empty());
            }
            Err((None, _)) => {}
        }
    }
}

fn is_sorted(v: &Value<'_>) -> bool {
    match v {
        Value::List(l) => l.iter().all(is_sorted),
        Value::Dict(d) => {
            let keys: Vec<&[u8]> = d.iter().map(|(k, _)| k).collect();
            keys.windows(2).all(|w| w[0] < w[1]) && d.iter().all(|(_, v)| is_sorted(v))
        }
        _ => true,
    }
}
