//! `[http]`: off without the section, loopback by default, a token
//! required anywhere else.

use super::*;

fn with_http(section: &str) -> String {
    format!("{BASE}\n{section}")
}

#[test]
fn http_is_off_without_its_section_and_loopback_with_it() {
    assert!(parse(BASE, "t.toml").unwrap().http.is_none());
    let l = parse(&with_http("[http]\n"), "t.toml").unwrap();
    let h = l.http.unwrap();
    assert_eq!(h.addr, "127.0.0.1:9090".parse().unwrap());
    assert!(h.token.is_none());
    assert!(!h.show_numbers);
    let l = parse(&with_http("[http]\nenabled = false\n"), "t.toml").unwrap();
    assert!(l.http.is_none());
    let l = parse(&with_http("[http]\naddr = \"[::1]:0\"\n"), "t.toml").unwrap();
    assert_eq!(l.http.unwrap().addr, "[::1]:0".parse().unwrap());
}

#[test]
fn http_on_a_public_address_without_a_token_is_refused() {
    let text = with_http("[http]\naddr = \"0.0.0.0:9090\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let line = line_of(&text, "addr = \"0.0.0.0:9090\"");
    assert!(
        e.starts_with(&format!(
            "t.toml:{line}: http.addr: 0.0.0.0:9090 is not a loopback address: set http.token"
        )),
        "{e}"
    );
    let text = with_http("[http]\naddr = \"192.0.2.1:9090\"\ntoken = \"0123456789abcdef0123\"\n");
    let h = parse(&text, "t.toml").unwrap().http.unwrap();
    assert_eq!(h.token.as_deref(), Some("0123456789abcdef0123"));
}

#[test]
fn http_bad_values_are_refused_with_their_line() {
    let text = with_http("[http]\naddr = \"localhost:9090\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let line = line_of(&text, "addr = \"localhost");
    assert!(
        e.starts_with(&format!(
            "t.toml:{line}: http.addr: \"localhost:9090\": expected IP:port"
        )),
        "{e}"
    );
    let text = with_http("[http]\ntoken = \"short\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let line = line_of(&text, "token = ");
    assert!(
        e.starts_with(&format!("t.toml:{line}: http.token: must be at least 16")),
        "{e}"
    );
    let text = with_http("[http]\nport = 9090\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("unknown field `port`"), "{e}");
}
