use std::time::{Duration, Instant};

use sip::HeaderName;

use super::*;
use crate::testutil::{msg, param, t0, Answer};

const REALM: &str = "sbc.example.com";
const URI: &str = "sip:sbc.example.com";

fn auth(now: Instant) -> Authenticator {
    Authenticator::new(
        AuthConfig {
            realm: REALM.to_owned(),
            nonce_lifetime: Duration::from_secs(30),
            seed: 7,
            max_tracked_nonces: 4,
        },
        now,
    )
}

fn users(name: &str) -> Option<Ha1> {
    (name == "alice").then(|| Ha1::from_password("alice", REALM, "secret"))
}

fn request(header: &str, value: &str) -> Message {
    msg(&format!(
        "REGISTER {URI} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\n\
         From: <sip:alice@sbc.example.com>;tag=a\nTo: <sip:alice@sbc.example.com>\n\
         Call-ID: c1\nCSeq: 2 REGISTER\n{header}: {value}\nContent-Length: 0\n\n"
    ))
}

fn answer(challenge: &str, password: &str, nc: u32) -> String {
    Answer {
        username: "alice",
        password,
        method: "REGISTER",
        uri: URI,
        nc,
        cnonce: "0a4f113b",
    }
    .to(challenge)
}

#[test]
fn challenge_offers_sha256_then_md5_with_realm_opaque_and_qop() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL);
    assert_eq!(c.len(), 2);
    assert_eq!(param(&c[0], "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(param(&c[1], "algorithm").as_deref(), Some("MD5"));
    for v in &c {
        assert_eq!(param(v, "realm").as_deref(), Some(REALM));
        assert_eq!(param(v, "qop").as_deref(), Some("auth"));
        assert!(param(v, "opaque").is_some_and(|o| o.len() == 32));
        assert_eq!(param(v, "stale"), None);
    }
    assert_ne!(param(&c[0], "nonce"), param(&c[1], "nonce"));
    let s = a.challenges(
        t0,
        true,
        Algorithms {
            sha256: false,
            md5: true,
        },
    );
    assert_eq!(s.len(), 1);
    assert_eq!(param(&s[0], "stale").as_deref(), Some("true"));
}

#[test]
fn add_challenge_writes_www_or_proxy_headers() {
    let t0 = t0();
    let mut a = auth(t0);
    let req = request("X", "y");
    let mut r = transaction::response_to(&req, 407, "Proxy Authentication Required", None).unwrap();
    a.add_challenge(t0, &mut r, AuthHeader::Proxy, false, Algorithms::ALL)
        .unwrap();
    assert_eq!(r.count(HeaderName::ProxyAuthenticate), 2);
    assert_eq!(r.count(HeaderName::WwwAuthenticate), 0);
    assert_eq!(AuthHeader::Proxy.status().0, 407);
    assert_eq!(AuthHeader::Www.status().0, 401);
}

#[test]
fn both_algorithms_verify_and_wrong_password_fails() {
    let t0 = t0();
    let mut a = auth(t0);
    for c in a.challenges(t0, false, Algorithms::ALL) {
        let good = request("Authorization", &answer(&c, "secret", 1));
        assert_eq!(
            a.check(t0, &good, AuthHeader::Www, users),
            AuthOutcome::Authorized {
                username: "alice".into()
            },
            "{c}"
        );
        let bad = request("Authorization", &answer(&c, "guess", 2));
        assert_eq!(
            a.check(t0, &bad, AuthHeader::Www, users),
            AuthOutcome::Failed {
                username: "alice".into()
            }
        );
    }
}

#[test]
fn proxy_authorization_is_read_for_proxy_challenges_only() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let req = request("Proxy-Authorization", &answer(&c, "secret", 1));
    assert_eq!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Missing { other_realm: false }
    );
    assert!(matches!(
        a.check(t0, &req, AuthHeader::Proxy, users),
        AuthOutcome::Authorized { .. }
    ));
}

#[test]
fn expired_nonce_with_a_correct_response_is_stale() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let req = request("Authorization", &answer(&c, "secret", 1));
    let late = t0 + Duration::from_secs(30);
    assert_eq!(
        a.check(late, &req, AuthHeader::Www, users),
        AuthOutcome::Stale
    );
    // Just inside the lifetime it is still good.
    assert!(matches!(
        a.check(
            late - Duration::from_millis(1),
            &req,
            AuthHeader::Www,
            users
        ),
        AuthOutcome::Authorized { .. }
    ));
    // A wrong response with the expired nonce is a failure, not stale.
    let bad = request("Authorization", &answer(&c, "guess", 2));
    assert!(matches!(
        a.check(late, &bad, AuthHeader::Www, users),
        AuthOutcome::Failed { .. }
    ));
}

#[test]
fn nonce_of_another_server_or_a_forged_one_is_stale() {
    let t0 = t0();
    let mut other = Authenticator::new(
        AuthConfig {
            seed: 8,
            ..auth(t0).config().clone()
        },
        t0,
    );
    let mut a = auth(t0);
    let c = other.challenges(t0, false, Algorithms::ALL).remove(0);
    // Same realm, other secret (a restart with a new seed): stale.
    let c = c.replace(&param(&c, "opaque").unwrap(), &a.opaque.clone());
    let req = request("Authorization", &answer(&c, "secret", 1));
    assert_eq!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Stale
    );
    let forged = c.replace(&param(&c, "nonce").unwrap(), "not-a-nonce");
    let req = request("Authorization", &answer(&forged, "secret", 1));
    assert_eq!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Stale
    );
}

#[test]
fn nonce_count_must_increase() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let first = request("Authorization", &answer(&c, "secret", 1));
    assert!(matches!(
        a.check(t0, &first, AuthHeader::Www, users),
        AuthOutcome::Authorized { .. }
    ));
    assert_eq!(
        a.check(t0, &first, AuthHeader::Www, users),
        AuthOutcome::Replay
    );
    let third = request("Authorization", &answer(&c, "secret", 3));
    assert!(matches!(
        a.check(t0, &third, AuthHeader::Www, users),
        AuthOutcome::Authorized { .. }
    ));
    let second = request("Authorization", &answer(&c, "secret", 2));
    assert_eq!(
        a.check(t0, &second, AuthHeader::Www, users),
        AuthOutcome::Replay
    );
}

#[test]
fn a_nonce_pushed_out_of_the_table_is_never_fresh_again() {
    let t0 = t0();
    let mut a = auth(t0);
    let first = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let req = request("Authorization", &answer(&first, "secret", 1));
    assert!(matches!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Authorized { .. }
    ));
    for _ in 0..4 {
        let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
        let r = request("Authorization", &answer(&c, "secret", 1));
        assert!(matches!(
            a.check(t0, &r, AuthHeader::Www, users),
            AuthOutcome::Authorized { .. }
        ));
    }
    assert_eq!(a.tracked_nonces(), 4);
    // The first nonce's entry is gone: a replay of nc=1 must not pass.
    assert_eq!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Stale
    );
}

#[test]
fn purge_forgets_expired_nonces() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let r = request("Authorization", &answer(&c, "secret", 1));
    assert!(matches!(
        a.check(t0, &r, AuthHeader::Www, users),
        AuthOutcome::Authorized { .. }
    ));
    a.purge(t0 + Duration::from_secs(29));
    assert_eq!(a.tracked_nonces(), 1);
    a.purge(t0 + Duration::from_secs(30));
    assert_eq!(a.tracked_nonces(), 0);
}

#[test]
fn other_realm_or_scheme_is_missing_credentials() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let other = c.replace(REALM, "elsewhere.example.net");
    let req = request("Authorization", &answer(&other, "secret", 1));
    assert_eq!(
        a.check(t0, &req, AuthHeader::Www, users),
        AuthOutcome::Missing { other_realm: true }
    );
    let basic = request("Authorization", "Basic YWxpY2U6c2VjcmV0");
    assert_eq!(
        a.check(t0, &basic, AuthHeader::Www, users),
        AuthOutcome::Missing { other_realm: true }
    );
    let none = request("X-Other", "1");
    assert_eq!(
        a.check(t0, &none, AuthHeader::Www, users),
        AuthOutcome::Missing { other_realm: false }
    );
}

#[test]
fn unknown_user_and_user_without_that_algorithm_fail() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let v = answer(&c, "secret", 1).replace("username=\"alice\"", "username=\"mallory\"");
    assert_eq!(
        a.check(t0, &request("Authorization", &v), AuthHeader::Www, users),
        AuthOutcome::Failed {
            username: "mallory".into()
        }
    );
    let md5_only = |n: &str| {
        users(n).map(|h| {
            let md5 = hex(h.get(Algorithm::Md5).unwrap());
            Ha1::from_hex(Some(&md5), None).unwrap()
        })
    };
    let sha = request("Authorization", &answer(&c, "secret", 1));
    assert!(matches!(
        a.check(t0, &sha, AuthHeader::Www, md5_only),
        AuthOutcome::Failed { .. }
    ));
}

#[test]
fn rule_breaking_credentials_are_malformed() {
    let t0 = t0();
    let mut a = auth(t0);
    let c = a.challenges(t0, false, Algorithms::ALL).remove(0);
    let good = answer(&c, "secret", 1);
    let cases = [
        (good.replace("qop=auth, ", ""), "qop=auth required"),
        (
            good.replace("qop=auth", "qop=auth-int"),
            "qop=auth required",
        ),
        (
            good.replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
            "unsupported digest algorithm",
        ),
        (
            good.replace("nc=00000001", "nc=1"),
            "nc is not 8 hex digits",
        ),
        (
            good.replace(
                "uri=\"sip:sbc.example.com\"",
                "uri=\"sip:other.example.com\"",
            ),
            "digest uri is not the Request-URI",
        ),
        (format!("{good}, userhash=true"), "userhash not offered"),
    ];
    for (v, why) in cases {
        assert_eq!(
            a.check(t0, &request("Authorization", &v), AuthHeader::Www, users),
            AuthOutcome::Malformed(why),
            "{v}"
        );
    }
    let short = good.replace(&param(&good, "response").unwrap(), "abcd");
    assert_eq!(
        a.check(
            t0,
            &request("Authorization", &short),
            AuthHeader::Www,
            users
        ),
        AuthOutcome::Malformed("response is not a digest of the algorithm")
    );
    let long_user = good.replace("alice", &"a".repeat(200));
    assert_eq!(
        a.check(
            t0,
            &request("Authorization", &long_user),
            AuthHeader::Www,
            users
        ),
        AuthOutcome::TooLarge("username too long")
    );
}

#[test]
fn the_secret_never_shows() {
    let a = auth(t0());
    let dbg = format!("{a:?}");
    assert!(dbg.contains("Secret(<redacted>)"), "{dbg}");
    assert_eq!(a.clone().token().len(), 16);
}
