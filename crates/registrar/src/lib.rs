#![forbid(unsafe_code)]

mod auth;
mod digest;
#[cfg(test)]
mod testutil;
mod users;

pub use auth::{AuthConfig, AuthHeader, AuthOutcome, Authenticator};
pub use digest::{Algorithm, Algorithms, Ha1};
pub use users::{User, Users, UsersError};
