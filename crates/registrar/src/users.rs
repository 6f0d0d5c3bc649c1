//! The users file: who may register, under which number, with which
//! credentials. TOML, one `[[user]]` table per phone; errors name the file,
//! the line and the field. Passwords are turned into HA1s at load and
//! dropped; neither appears in Debug output.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::digest::Ha1;

/// A user who may register: an E.164 number (the address-of-record calls
/// are routed by), a username (the digest identity), and HA1s.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    number: Arc<str>,
    username: Arc<str>,
    ha1: Ha1,
}

impl User {
    /// A user; `number` must be E.164 (`+` and 1–15 digits) and `username`
    /// 1–64 characters of `A–Z a–z 0–9 - _ . ~`.
    pub fn new(number: &str, username: &str, ha1: Ha1) -> Result<User, String> {
        check_number(number)?;
        check_username(username)?;
        Ok(User {
            number: number.into(),
            username: username.into(),
            ha1,
        })
    }

    /// A user whose HA1s are computed from `password` for `realm`.
    pub fn with_password(
        number: &str,
        username: &str,
        realm: &str,
        password: &str,
    ) -> Result<User, String> {
        User::new(
            number,
            username,
            Ha1::from_password(username, realm, password),
        )
    }

    /// The E.164 number.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The number, shared (bindings keep it as their AOR).
    pub(crate) fn number_arc(&self) -> &Arc<str> {
        &self.number
    }

    /// The username, shared (failure counters key on it).
    pub(crate) fn username_arc(&self) -> &Arc<str> {
        &self.username
    }

    /// The digest username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The HA1s.
    pub fn ha1(&self) -> Ha1 {
        self.ha1
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("number", &self.number)
            .field("username", &self.username)
            .field("ha1", &self.ha1)
            .finish()
    }
}

fn check_number(n: &str) -> Result<(), String> {
    let digits = n
        .strip_prefix('+')
        .ok_or_else(|| format!("{n:?} is not E.164: it must start with +"))?;
    if digits.is_empty()
        || digits.len() > 15
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(format!(
            "{n:?} is not E.164: + then 1 to 15 digits, the first not 0"
        ));
    }
    Ok(())
}

fn check_username(u: &str) -> Result<(), String> {
    if u.is_empty() || u.len() > 64 {
        return Err(format!("{u:?}: a username has 1 to 64 characters"));
    }
    if !u
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err(format!(
            "{u:?}: a username has only letters, digits and - _ . ~"
        ));
    }
    Ok(())
}

/// Every user, found by username or by number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Users {
    list: Vec<User>,
    by_username: HashMap<Arc<str>, usize>,
    by_number: HashMap<Arc<str>, usize>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("users", &self.list.len())
            .finish()
    }
}

impl Users {
    /// A table of `users`; an error names the first duplicated username or
    /// number.
    pub fn new(users: impl IntoIterator<Item = User>) -> Result<Users, String> {
        let mut t = Users::default();
        for u in users {
            t.push(u)?;
        }
        Ok(t)
    }

    fn push(&mut self, u: User) -> Result<(), String> {
        if self.by_username.contains_key(&u.username) {
            return Err(format!("username {:?} appears twice", u.username()));
        }
        if self.by_number.contains_key(&u.number) {
            return Err(format!("number {:?} appears twice", u.number()));
        }
        let i = self.list.len();
        self.by_username.insert(u.username.clone(), i);
        self.by_number.insert(u.number.clone(), i);
        self.list.push(u);
        Ok(())
    }

    /// Reads and parses the users file at `path`, computing HA1s from
    /// passwords for `realm`.
    pub fn load(path: &Path, realm: &str) -> Result<Users, UsersError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| UsersError {
            file: file.clone(),
            line: None,
            field: String::new(),
            msg: e.to_string(),
        })?;
        Users::parse(&text, &file, realm)
    }

    /// Parses the text of a users file; `source` names it in errors.
    pub fn parse(text: &str, source: &str, realm: &str) -> Result<Users, UsersError> {
        let ctx = Ctx { file: source, text };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| ctx.err(e.span().as_ref(), "", e.message().to_owned()))?;
        let mut users = Users::default();
        for (i, entry) in raw.user.iter().enumerate() {
            let field = |f: &str| format!("user[{i}].{f}");
            let u = entry.get_ref();
            let number = u.number.get_ref();
            check_number(number)
                .map_err(|m| ctx.err(Some(&u.number.span()), &field("number"), m))?;
            let name = u.username.get_ref();
            check_username(name)
                .map_err(|m| ctx.err(Some(&u.username.span()), &field("username"), m))?;
            let ha1 = match (&u.password, &u.ha1_md5, &u.ha1_sha256) {
                (Some(p), None, None) => {
                    if p.get_ref().is_empty() || p.get_ref().len() > 256 {
                        return Err(ctx.err(
                            Some(&p.span()),
                            &field("password"),
                            "a password has 1 to 256 bytes",
                        ));
                    }
                    Ha1::from_password(name, realm, p.get_ref())
                }
                (Some(p), _, _) => {
                    return Err(ctx.err(
                        Some(&p.span()),
                        &field("password"),
                        "give either password or ha1_md5/ha1_sha256, not both",
                    ))
                }
                (None, None, None) => {
                    return Err(ctx.err(
                        Some(&entry.span()),
                        &field("password"),
                        "missing: give password, or ha1_md5 and/or ha1_sha256",
                    ))
                }
                (None, md5, sha) => {
                    if let Some(v) = md5 {
                        if Ha1::from_hex(Some(v.get_ref()), None).is_none() {
                            let m = "must be 32 hex digits";
                            return Err(ctx.err(Some(&v.span()), &field("ha1_md5"), m));
                        }
                    }
                    if let Some(v) = sha {
                        if Ha1::from_hex(None, Some(v.get_ref())).is_none() {
                            let m = "must be 64 hex digits";
                            return Err(ctx.err(Some(&v.span()), &field("ha1_sha256"), m));
                        }
                    }
                    // Both were just checked to be hex of the right length.
                    Ha1::from_hex(
                        md5.as_ref().map(|s| s.get_ref().as_str()),
                        sha.as_ref().map(|s| s.get_ref().as_str()),
                    )
                    .ok_or_else(|| ctx.err(Some(&entry.span()), &field("ha1_md5"), "bad HA1"))?
                }
            };
            let user = User {
                number: number.as_str().into(),
                username: name.as_str().into(),
                ha1,
            };
            users.push(user).map_err(|m| {
                let span = if m.starts_with("username") {
                    u.username.span()
                } else {
                    u.number.span()
                };
                let f = if m.starts_with("username") {
                    "username"
                } else {
                    "number"
                };
                ctx.err(Some(&span), &field(f), m)
            })?;
        }
        Ok(users)
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every user, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.list.iter()
    }

    /// The user with this username.
    pub fn by_username(&self, username: &str) -> Option<&User> {
        self.by_username.get(username).map(|&i| &self.list[i])
    }

    /// The user with this E.164 number.
    pub fn by_number(&self, number: &str) -> Option<&User> {
        self.by_number.get(number).map(|&i| &self.list[i])
    }

    /// The user a URI user part names: a number (with or without `+`, with
    /// tel visual separators `-.()` ignored) or a username.
    pub fn find(&self, key: &str) -> Option<&User> {
        if let Some(u) = self.by_number(key) {
            return Some(u);
        }
        let digits: String = key
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect();
        let plus = if digits.starts_with('+') {
            digits
        } else {
            format!("+{digits}")
        };
        if plus.len() > 1 && plus[1..].bytes().all(|b| b.is_ascii_digit()) {
            if let Some(u) = self.by_number(&plus) {
                return Some(u);
            }
        }
        self.by_username(key)
    }
}

/// An error in the users file: `FILE:LINE: FIELD: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersError {
    /// The file (as named to [`Users::parse`]).
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// The field, e.g. `user[2].number`; empty for a syntax error.
    pub field: String,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for UsersError {}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<&Range<usize>>, field: &str, msg: impl Into<String>) -> UsersError {
        let line = span.map(|s| {
            let before = self.text.get(..s.start).unwrap_or(self.text);
            before.matches('\n').count() + 1
        });
        UsersError {
            file: self.file.to_owned(),
            line,
            field: field.to_owned(),
            msg: msg.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    user: Vec<Spanned<RawUser>>,
}

// No Debug: it holds passwords.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    number: Spanned<String>,
    username: Spanned<String>,
    password: Option<Spanned<String>>,
    ha1_md5: Option<Spanned<String>>,
    ha1_sha256: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{hex, Algorithm};

    const REALM: &str = "sbc.example.com";

    fn parse(text: &str) -> Result<Users, UsersError> {
        Users::parse(text, "users.toml", REALM)
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/users.toml");
        let u = Users::load(&path, REALM).unwrap();
        assert!(u.len() >= 3, "{u:?}");
        // bob's HA1s in the example are those of his example password.
        let bob = u.by_username("bob").unwrap();
        assert_eq!(bob.ha1(), Ha1::from_password("bob", REALM, "change-me-bob"));
    }

    #[test]
    fn password_and_ha1_users() {
        let alice = Ha1::from_password("alice", REALM, "secret");
        let md5 = hex(alice.get(Algorithm::Md5).unwrap());
        let sha = hex(alice.get(Algorithm::Sha256).unwrap());
        let u = parse(&format!(
            "[[user]]\nnumber = \"+15550100001\"\nusername = \"alice\"\npassword = \"secret\"\n\n\
             [[user]]\nnumber = \"+15550100002\"\nusername = \"bob\"\nha1_md5 = \"{md5}\"\n\n\
             [[user]]\nnumber = \"+15550100003\"\nusername = \"carol\"\nha1_md5 = \"{md5}\"\n\
             ha1_sha256 = \"{sha}\"\n"
        ))
        .unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u.by_username("alice").unwrap().ha1(), alice);
        let bob = u.by_username("bob").unwrap();
        assert!(bob.ha1().algorithms().md5 && !bob.ha1().algorithms().sha256);
        assert_eq!(u.by_username("carol").unwrap().ha1(), alice);
        assert_eq!(u.find("+15550100002").unwrap().username(), "bob");
        assert_eq!(u.find("15550100002").unwrap().username(), "bob");
        assert_eq!(u.find("+1-555-010-0002").unwrap().username(), "bob");
        assert_eq!(u.find("carol").unwrap().number(), "+15550100003");
        assert!(u.find("dave").is_none());
        assert!(u.find("").is_none());
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let u = parse(
            "[[user]]\nnumber = \"+15550100001\"\nusername = \"alice\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        let alice = u.by_username("alice").unwrap();
        let md5 = hex(alice.ha1().get(Algorithm::Md5).unwrap());
        for dbg in [
            format!("{u:?}"),
            format!("{alice:?}"),
            format!("{alice:#?}"),
        ] {
            assert!(!dbg.contains("hunter2"), "{dbg}");
            assert!(!dbg.contains(&md5), "{dbg}");
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "[[user]]\nnumber = \"15550100001\"\nusername = \"a\"\npassword = \"p\"\n",
                "users.toml:2: user[0].number: \"15550100001\" is not E.164: it must start with +",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\npassword = \"p\"\n\n\
                 [[user]]\nnumber = \"+2\"\nusername = \"a b\"\npassword = \"p\"\n",
                "users.toml:8: user[1].username: \"a b\": a username has only letters, digits and - _ . ~",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\npassword = \"p\"\nha1_md5 = \"00\"\n",
                "users.toml:4: user[0].password: give either password or ha1_md5/ha1_sha256, not both",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\nha1_sha256 = \"abcd\"\n",
                "users.toml:4: user[0].ha1_sha256: must be 64 hex digits",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\npassword = \"p\"\n\n\
                 [[user]]\nnumber = \"+1\"\nusername = \"b\"\npassword = \"p\"\n",
                "users.toml:7: user[1].number: number \"+1\" appears twice",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\npassword = \"p\"\n\n\
                 [[user]]\nnumber = \"+2\"\nusername = \"a\"\npassword = \"p\"\n",
                "users.toml:8: user[1].username: username \"a\" appears twice",
            ),
            (
                "[[user]]\nnumber = \"+1\"\nusername = \"a\"\n",
                "users.toml:1: user[0].password: missing: give password, or ha1_md5 and/or ha1_sha256",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text}");
        }
        let e =
            parse("[[user]]\nnumber = \"+1\"\nusername = \"a\"\npasword = \"p\"\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("pasword"), "{e}");
        let e = parse("[[user]\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        let e = Users::load(Path::new("/nonexistent/users.toml"), REALM).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/users.toml: "),
            "{e}"
        );
    }

    #[test]
    fn numbers_and_usernames_are_checked() {
        for bad in ["", "+", "+0123", "+1234567890123456", "+12a", "123"] {
            assert!(check_number(bad).is_err(), "{bad}");
        }
        for good in ["+1", "+447700900123", "+123456789012345"] {
            assert!(check_number(good).is_ok(), "{good}");
        }
        assert!(check_username("+15550100001").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
        assert!(check_username("alice.smith-2_~").is_ok());
        assert!(User::with_password("+1", "x", REALM, "p").is_ok());
        assert!(Users::new([
            User::with_password("+1", "x", REALM, "p").unwrap(),
            User::with_password("+2", "x", REALM, "p").unwrap(),
        ])
        .is_err());
    }
}
