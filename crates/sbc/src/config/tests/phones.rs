//! `[phones]`, phones trunks and destinations that are registered users.

use super::*;

/// BASE plus a phones trunk, a users file and `extra` in `[phones]`;
/// `dest` is the route destination toward the phones.
fn with_phones(dir: &Scratch, users: &str, extra: &str, dest: &str) -> (String, String) {
    let file = dir.0.join("users.toml");
    std::fs::write(&file, users).unwrap();
    let text = format!(
        "{BASE}\n[phones]\nusers = {:?}\n{extra}\n\n[[trunk]]\nname = \"phones\"\nkind = \"phones\"\nacl = [\"10.0.0.0/8\"]\n\n[[route]]\nname = \"to-phones\"\nfrom = [\"carrier\"]\ncalled = \"^\\\\+4930\"\nto = [{dest}]\n",
        file.display()
    );
    (text, file.display().to_string())
}

const USERS: &str =
    "[[user]]\nnumber = \"+4930123456\"\nusername = \"alice\"\npassword = \"secret\"\n";

#[test]
fn phones_trunk_users_and_registered_destination_load() {
    let dir = Scratch::new("phones-ok");
    let (text, _) = with_phones(
        &dir,
        USERS,
        "realm = \"contoso\"\nstore = \"memory\"\nmin_expires_s = 30\n[phones.protect]\nmax_failures_per_ip = 4\naction = \"forbidden\"",
        "{ trunk = \"phones\", registered = true }, { trunk = \"teams\", label = \"Fail-over\" }",
    );
    let l = parse(&text, "t.toml").unwrap();
    let p = trunk(&l, "phones");
    assert_eq!(p.kind, trunk::TrunkKind::Phones);
    assert!(p.peers.is_empty());
    assert_eq!(p.transports.len(), 3, "UDP, TCP and TLS");
    let ph = l.phones.as_ref().unwrap();
    assert_eq!(ph.store, StoreKind::Memory);
    assert_eq!(ph.phones.registrar.auth.realm, "contoso");
    assert_eq!(ph.phones.registrar.min_expires, 30);
    assert_eq!(ph.phones.registrar.protect.max_failures_per_ip, 4);
    assert_eq!(
        ph.phones.registrar.protect.action,
        registrar::BlockAction::Forbidden
    );
    assert!(ph.phones.users.by_number("+4930123456").is_some());
    let r = l
        .routes
        .routes
        .iter()
        .find(|r| r.name == "to-phones")
        .unwrap();
    assert_eq!(r.to[0].target, routing::Target::Registered);
    assert_eq!(r.to[1].label.as_deref(), Some("Fail-over"));
}

#[test]
fn store_defaults_to_redb_under_data_and_takes_redis() {
    let dir = Scratch::new("phones-store");
    let (text, _) = with_phones(
        &dir,
        USERS,
        "",
        "{ trunk = \"phones\", user = \"+4930123456\" }",
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(
        l.phones.as_ref().unwrap().store,
        StoreKind::Redb("data".into())
    );
    let r = l
        .routes
        .routes
        .iter()
        .find(|r| r.name == "to-phones")
        .unwrap();
    assert_eq!(r.to[0].target, routing::Target::User("+4930123456".into()));
    let (text, _) = with_phones(
        &dir,
        USERS,
        "store = \"redis://127.0.0.1:6379/0\"",
        "{ trunk = \"phones\", registered = true }",
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(
        l.phones.unwrap().store,
        StoreKind::Redis("redis://127.0.0.1:6379/0".into())
    );
}

fn refused_with(text: &str, field: &str, msg: &str) {
    let e = parse(text, "t.toml").unwrap_err().to_string();
    assert!(e.starts_with("t.toml:"), "{e}");
    assert!(
        e.contains(&format!(": {field}: ")),
        "{e} (want field {field})"
    );
    assert!(e.contains(msg), "{e} (want {msg:?})");
}

#[test]
fn bad_phones_configuration_names_file_line_and_field() {
    let dir = Scratch::new("phones-bad");
    // A phones destination that does not say which user.
    let (text, _) = with_phones(&dir, USERS, "", "\"phones\"");
    refused_with(&text, "route[1].to[0]", "is a phones trunk");
    // `registered` toward a trunk that is not a phones trunk.
    let (text, _) = with_phones(&dir, USERS, "", "{ trunk = \"teams\", registered = true }");
    refused_with(&text, "route[1].to[0]", "for phones trunks");
    // A user that is not E.164.
    let (text, _) = with_phones(&dir, USERS, "", "{ trunk = \"phones\", user = \"alice\" }");
    refused_with(&text, "route[1].to[0].user", "not an E.164 number");
    // An unknown store.
    let (text, _) = with_phones(
        &dir,
        USERS,
        "store = \"sqlite\"",
        "{ trunk = \"phones\", registered = true }",
    );
    refused_with(&text, "phones.store", "use \"redb\"");
    // min above max.
    let (text, _) = with_phones(
        &dir,
        USERS,
        "min_expires_s = 9000",
        "{ trunk = \"phones\", registered = true }",
    );
    refused_with(&text, "phones.min_expires_s", "above max_expires_s");
    // A phones trunk without an acl.
    let (text, _) = with_phones(&dir, USERS, "", "{ trunk = \"phones\", registered = true }");
    let text = text.replace("acl = [\"10.0.0.0/8\"]\n", "");
    refused_with(&text, "trunk[3].acl", "networks its phones come from");
}

#[test]
fn a_bad_users_file_is_reported_with_its_own_line() {
    let dir = Scratch::new("phones-users");
    let bad = "[[user]]\nnumber = \"+4930123456\"\nusername = \"alice\"\npassword = \"a\"\n\n[[user]]\nnumber = \"4930\"\nusername = \"bob\"\npassword = \"b\"\n";
    let (text, file) = with_phones(&dir, bad, "", "{ trunk = \"phones\", registered = true }");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains(": phones.users: "), "{e}");
    assert!(
        e.contains(&format!("{file}:7: user[1].number")),
        "the users file's line: {e}"
    );
    // A missing users file.
    let (text, _) = with_phones(&dir, USERS, "", "{ trunk = \"phones\", registered = true }");
    let text = text.replace("users.toml", "nowhere.toml");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains(": phones.users: ") && e.contains("nowhere.toml"),
        "{e}"
    );
}
