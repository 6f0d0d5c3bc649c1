//! Handles the endpoint gives out for its transactions.

use std::fmt;

/// A client transaction (a request this element sent). Opaque and cheap to
/// copy; the endpoint matches responses to it by the branch of the request's
/// top Via and the CSeq method (RFC 3261 §17.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(pub(crate) u64);

/// A server transaction (a request this element received and must answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey(pub(crate) u64);

/// Either kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxKey {
    /// A client transaction.
    Client(ClientKey),
    /// A server transaction.
    Server(ServerKey),
}

impl From<ClientKey> for TxKey {
    fn from(k: ClientKey) -> TxKey {
        TxKey::Client(k)
    }
}

impl From<ServerKey> for TxKey {
    fn from(k: ServerKey) -> TxKey {
        TxKey::Server(k)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl fmt::Display for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxKey::Client(k) => k.fmt(f),
            TxKey::Server(k) => k.fmt(f),
        }
    }
}
