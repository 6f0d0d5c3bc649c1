//! Known-answer tests from `shared/corpora/srtp/` (see its PROVENANCE.md):
//! RFC 3711 Appendix B.2/B.3, libsrtp's cipher, HMAC and packet-level
//! SRTP/SRTCP answers, and RFC 7714 §16 (AEAD_AES_128_GCM).
//!
//! Not used, because this crate does not implement them: RFC 3711 B.1
//! (AES-f8), RFC 6188 and libsrtp AES-192/256-CM, RFC 7714 §17
//! (AEAD_AES_256_GCM), libsrtp's 8-octet GCM tag.

use super::kdf::{prf, session_keys, SessionKeys};
use super::transform::{Cm, Gcm, Transform};
use super::*;
use crate::test_corpora::{hex, hex_at, srtp_json};

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into()
        .unwrap_or_else(|_| panic!("expected {N} octets, got {}", v.len()))
}

fn salt14(v: &[u8]) -> [u8; 14] {
    let mut s = [0u8; 14];
    s[..v.len()].copy_from_slice(v);
    s
}

fn keys(cipher_key: &[u8], cipher_salt: &[u8], auth_key: &[u8]) -> SessionKeys {
    SessionKeys {
        cipher_key: arr(cipher_key),
        cipher_salt: salt14(cipher_salt),
        auth_key: if auth_key.is_empty() {
            [0; 20]
        } else {
            arr(auth_key)
        },
    }
}

fn cm(k: &SessionKeys) -> Cm {
    Cm::new(k)
}

fn gcm(k: &SessionKeys) -> Gcm {
    Gcm::new(k).unwrap()
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let v = srtp_json("rfc3711_appendix_b.json");
    let b2 = &v["B.2_aes_cm_keystream"];
    let k = keys(
        &hex_at(b2, &["session_key"]),
        &hex_at(b2, &["session_salt"]),
        &[],
    );
    // Keystream for SSRC 0, index 0, up to counter offset 0xFF01.
    let mut ks = vec![0u8; 0xff02 * 16];
    cm(&k).apply_keystream(0, 0, &mut ks);
    let blocks = b2["keystream_blocks_by_counter_offset"]
        .as_object()
        .unwrap();
    assert_eq!(blocks.len(), 6);
    for (offset, block) in blocks {
        let at = usize::from_str_radix(offset, 16).unwrap() * 16;
        assert_eq!(
            ks[at..at + 16],
            hex(block.as_str().unwrap()),
            "block {offset}"
        );
    }
}

#[test]
fn rfc3711_b3_key_derivation() {
    let v = srtp_json("rfc3711_appendix_b.json");
    let b3 = &v["B.3_key_derivation"];
    assert_eq!(b3["kdr"], 0);
    let mk: [u8; 16] = arr(&hex_at(b3, &["master_key"]));
    let ms: [u8; 14] = arr(&hex_at(b3, &["master_salt"]));
    let k = session_keys(&mk, &ms, false);
    assert_eq!(k.cipher_key.to_vec(), hex_at(b3, &["cipher_key"]));
    assert_eq!(k.cipher_salt.to_vec(), hex_at(b3, &["cipher_salt"]));
    let auth94 = hex_at(b3, &["auth_key"]);
    assert_eq!(auth94.len(), 94);
    assert_eq!(k.auth_key.to_vec(), auth94[..20]);
    // The PRF gives all 94 octets the RFC lists.
    let mut long = [0u8; 94];
    prf(&mk, &ms, 1, &mut long);
    assert_eq!(long.to_vec(), auth94);

    let c = &v["B.3_key_derivation_srtcp_computed"];
    let k = session_keys(&mk, &ms, true);
    assert_eq!(k.cipher_key.to_vec(), hex_at(c, &["srtcp_cipher_key"]));
    assert_eq!(k.auth_key.to_vec(), hex_at(c, &["srtcp_auth_key_20"]));
    assert_eq!(k.cipher_salt.to_vec(), hex_at(c, &["srtcp_cipher_salt"]));
}

#[test]
fn libsrtp_cipher_and_hmac_kats() {
    let v = srtp_json("libsrtp_kat.json");
    // AES-ICM-128: key||salt, nonce 0 → keystream over zeros.
    let icm = &v["cipher"]["aes_icm_128"];
    let ks = hex_at(icm, &["key_with_salt"]);
    assert_eq!(hex_at(icm, &["nonce"]), [0; 16]);
    let mut data = hex_at(icm, &["plaintext"]);
    cm(&keys(&ks[..16], &ks[16..], &[])).apply_keystream(0, 0, &mut data);
    assert_eq!(data, hex_at(icm, &["ciphertext"]));

    // AES-GCM-128 with AAD, 16-octet tag: with the IV as salt, SSRC 0 and
    // index 0 the nonce is the IV itself.
    let g = &v["cipher"]["aes_gcm_128"];
    let iv = hex_at(g, &["iv"]);
    let gk = gcm(&keys(&hex_at(g, &["aes_key"]), &iv, &[]));
    let mut data = hex_at(g, &["plaintext"]);
    let tag = gk.seal(0, 0, &hex_at(g, &["aad"]), &mut data).unwrap();
    data.extend_from_slice(&tag);
    assert_eq!(data, hex_at(g, &["ciphertext_with_tag16"]));
    let ct_len = data.len() - 16;
    let (ciphertext, tag) = data.split_at_mut(ct_len);
    assert!(gk.open(0, 0, &hex_at(g, &["aad"]), ciphertext, tag));
    assert_eq!(ciphertext.to_vec(), hex_at(g, &["plaintext"]));

    // HMAC-SHA1 (RFC 2202 case 1).
    let h = &v["auth"]["hmac_sha1"];
    let c = cm(&keys(&[0; 16], &[0; 14], &hex_at(h, &["key"])));
    assert_eq!(
        c.tag(&hex_at(h, &["data"]), &[]).to_vec(),
        hex_at(h, &["tag"])
    );
}

/// Protect and unprotect one libsrtp packet vector (and its SRTCP one).
fn libsrtp_packet(name: &str, profile: SrtpProfile, encrypt: bool) {
    let v = srtp_json("libsrtp_kat.json");
    let p = &v["packet"][name];
    let mut policy = SrtpPolicy::new(
        profile,
        &hex_at(p, &["master_key"]),
        &hex_at(p, &["master_salt"]),
    )
    .unwrap();
    policy.encrypt_rtp = encrypt;
    policy.encrypt_rtcp = encrypt;
    assert_eq!(p["roc"], 0);

    let plain = hex_at(p, &["rtp_plaintext"]);
    let srtp = hex_at(p, &["srtp"]);
    let mut tx = SrtpContext::new(&policy).unwrap();
    let mut buf = plain.clone();
    buf.resize(plain.len() + profile.rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], srtp, "{name} SRTP");
    let mut rx = SrtpContext::new(&policy).unwrap();
    let mut buf = srtp.clone();
    let n = rx.unprotect_rtp(&mut buf).unwrap();
    assert_eq!(buf[..n], plain, "{name} RTP");

    if p.get("srtcp").is_none() {
        return;
    }
    let plain = hex_at(p, &["rtcp_plaintext"]);
    let srtcp = hex_at(p, &["srtcp"]);
    let ssrc = u32::from_str_radix(p["ssrc"].as_str().unwrap(), 16).unwrap();
    let index = u32::try_from(p["srtcp_index"].as_u64().unwrap()).unwrap();
    // libsrtp numbers its first SRTCP packet 1; RFC 3711 §3.4 starts at 0.
    tx.set_tx_srtcp_index(ssrc, index);
    let mut buf = plain.clone();
    buf.resize(plain.len() + profile.rtcp_overhead(), 0);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], srtcp, "{name} SRTCP");
    let mut buf = srtcp.clone();
    let n = rx.unprotect_rtcp(&mut buf).unwrap();
    assert_eq!(buf[..n], plain, "{name} RTCP");
    assert_eq!(rx.rx_srtcp_index(ssrc), Some(index));
}

#[test]
fn libsrtp_aes_cm_128_hmac_sha1_80_packets() {
    libsrtp_packet(
        "AES_CM_128_HMAC_SHA1_80",
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    // And its derived session keys.
    let v = srtp_json("libsrtp_kat.json");
    let p = &v["packet"]["AES_CM_128_HMAC_SHA1_80"];
    let mk: [u8; 16] = arr(&hex_at(p, &["master_key"]));
    let ms: [u8; 14] = arr(&hex_at(p, &["master_salt"]));
    let sk = &p["session_keys"];
    for (rtcp, pre) in [(false, "srtp"), (true, "srtcp")] {
        let k = session_keys(&mk, &ms, rtcp);
        let field = |f: &str| hex_at(sk, &[&format!("{pre}_{f}")]);
        assert_eq!(k.cipher_key.to_vec(), field("cipher_key"));
        assert_eq!(k.cipher_salt.to_vec(), field("cipher_salt"));
        assert_eq!(k.auth_key.to_vec(), field("auth_key"));
    }
}

/// libsrtp's NULL cipher + HMAC-SHA1-80 is `_80` with SDES
/// `UNENCRYPTED_SRTP UNENCRYPTED_SRTCP`: same keys, payload in clear.
#[test]
fn libsrtp_null_hmac_sha1_80_packets_as_unencrypted_session_params() {
    libsrtp_packet("NULL_HMAC_SHA1_80", SrtpProfile::AesCm128HmacSha1_80, false);
}

#[test]
fn libsrtp_aead_aes_128_gcm_packets() {
    libsrtp_packet("AEAD_AES_128_GCM", SrtpProfile::AeadAes128Gcm, true);
    let v = srtp_json("libsrtp_kat.json");
    let p = &v["packet"]["AEAD_AES_128_GCM"];
    let mk: [u8; 16] = arr(&hex_at(p, &["master_key"]));
    let ms = salt14(&hex_at(p, &["master_salt"]));
    let sk = &p["session_keys"];
    for (rtcp, pre) in [(false, "srtp"), (true, "srtcp")] {
        let k = session_keys(&mk, &ms, rtcp);
        assert_eq!(k.cipher_key.to_vec(), hex_at(sk, &[&format!("{pre}_key")]));
        assert_eq!(
            k.cipher_salt[..12].to_vec(),
            hex_at(sk, &[&format!("{pre}_salt")])
        );
    }
}

/// RFC 7714 §16: session key and salt given directly (no KDF).
fn rfc7714_context(encrypt_rtp: bool, encrypt_rtcp: bool) -> SrtpContext {
    let v = srtp_json("rfc7714_aes_gcm.json");
    let key = hex_at(&v, &["cases", "AEAD_AES_128_GCM", "key"]);
    let salt = hex_at(&v, &["common", "session_salt"]);
    let mut policy = SrtpPolicy::new(SrtpProfile::AeadAes128Gcm, &key, &salt).unwrap();
    policy.encrypt_rtp = encrypt_rtp;
    policy.encrypt_rtcp = encrypt_rtcp;
    let k = keys(&key, &salt, &[]);
    SrtpContext::assemble(
        &policy,
        Transform::gcm(&k).unwrap(),
        Rtcp::Gcm(Gcm::new(&k).unwrap()),
    )
    .unwrap()
}

#[test]
fn rfc7714_aead_aes_128_gcm_vectors() {
    let v = srtp_json("rfc7714_aes_gcm.json");
    let common = &v["common"];
    let case = &v["cases"]["AEAD_AES_128_GCM"];
    let rtp = hex_at(common, &["rtp_plaintext"]);
    let rtcp = hex_at(common, &["rtcp_plaintext"]);
    assert_eq!(hex_at(common, &["roc"]), [0; 4]);
    let ssrc = u32::from_be_bytes(arr(&hex_at(common, &["ssrc"])));
    let index = u32::from_be_bytes(arr(&hex_at(common, &["srtcp_index"])));

    for (encrypt, srtp_field, srtcp_field) in [
        (true, "srtp", "srtcp"),
        (false, "srtp_auth_only", "srtcp_auth_only"),
    ] {
        let mut tx = rfc7714_context(encrypt, encrypt);
        let mut rx = rfc7714_context(encrypt, encrypt);

        let expected = hex_at(case, &[srtp_field]);
        let mut buf = rtp.clone();
        buf.resize(rtp.len() + 16, 0);
        let n = tx.protect_rtp(&mut buf, rtp.len()).unwrap();
        assert_eq!(buf[..n], expected, "{srtp_field}");
        let mut buf = expected.clone();
        let n = rx.unprotect_rtp(&mut buf).unwrap();
        assert_eq!(buf[..n], rtp, "{srtp_field} open");

        let expected = hex_at(case, &[srtcp_field]);
        tx.set_tx_srtcp_index(ssrc, index);
        let mut buf = rtcp.clone();
        buf.resize(rtcp.len() + 20, 0);
        let n = tx.protect_rtcp(&mut buf, rtcp.len()).unwrap();
        assert_eq!(buf[..n], expected, "{srtcp_field}");
        let mut buf = expected.clone();
        let n = rx.unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n], rtcp, "{srtcp_field} open");

        // One flipped bit anywhere fails.
        for at in [
            0,
            5,
            expected.len() / 2,
            expected.len() - 5,
            expected.len() - 1,
        ] {
            let mut bad = expected.clone();
            bad[at] ^= 0x10;
            let mut fresh = rfc7714_context(encrypt, encrypt);
            assert!(
                fresh.unprotect_rtcp(&mut bad).is_err(),
                "{srtcp_field} bit at {at}"
            );
        }
    }
}

#[test]
fn rfc7714_ivs() {
    let v = srtp_json("rfc7714_aes_gcm.json");
    let c = &v["common"];
    let case = &v["cases"]["AEAD_AES_128_GCM"];
    let g = gcm(&keys(
        &hex_at(case, &["key"]),
        &hex_at(c, &["session_salt"]),
        &[],
    ));
    let ssrc = u32::from_be_bytes(arr(&hex_at(c, &["ssrc"])));
    let seq = u16::from_be_bytes(arr(&hex_at(c, &["rtp_seq"])));
    let index = u32::from_be_bytes(arr(&hex_at(c, &["srtcp_index"])));
    assert_eq!(
        g.iv(ssrc, u64::from(seq)).to_vec(),
        hex_at(case, &["rtp_iv"])
    );
    assert_eq!(
        g.iv(ssrc, u64::from(index)).to_vec(),
        hex_at(case, &["rtcp_iv"])
    );
}
